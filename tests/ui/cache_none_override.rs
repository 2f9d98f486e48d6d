use cacheward::cached_store;

// The trait's `cache_none` makes `get_user` store `Option<String>`; the method-level
// `cache_none = false` makes `find_user` store `String`, so the two cannot share a template.
#[cached_store(ttl = 60, cache_none)]
pub trait UserStore: Send + Sync {
    #[cached(key = "app:user:<user_id>")]
    async fn get_user(&self, user_id: u64) -> Option<String>;

    #[cached(key = "app:user:<id>", cache_none = false)]
    async fn find_user(&self, id: u64) -> Option<String>;
}

fn main() {}
