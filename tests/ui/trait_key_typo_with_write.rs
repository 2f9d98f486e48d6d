use cacheward::cached_store;

// The typo is reported at the key, not at `#[invalidates]`.
#[cached_store(key = "app:user:<user>", ttl = 60)]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;

    #[invalidates]
    async fn delete_user(&self, user_id: u64) -> Result<(), ()>;
}

fn main() {}
