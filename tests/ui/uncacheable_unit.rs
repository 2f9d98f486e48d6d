use cacheward::cached_store;

pub struct StoreError;

// `delete_user` is async, takes `&self` and covers every placeholder, so it would be
// cached; it returns nothing to cache (it is a write missing `#[invalidates]`).
#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait Store: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Result<Option<String>, StoreError>;

    async fn delete_user(&self, user_id: u64) -> Result<(), StoreError>;
}

fn main() {}
