use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;

    // Not async: it cannot be cached, and forwarding it silently would hide that.
    fn get_user_now(&self, user_id: u64) -> Option<String>;
}

fn main() {}
