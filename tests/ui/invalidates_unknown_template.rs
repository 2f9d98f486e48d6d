use cacheward::cached_store;

#[cached_store(ttl = 60)]
pub trait Store: Send + Sync {
    #[cached(key = "app:user:<user_id>")]
    async fn get_user(&self, user_id: u64) -> Option<String>;

    #[invalidates(key = "app:users:<user_id>")]
    async fn set_user(&self, user_id: u64, name: String) -> bool;
}

fn main() {}
