use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;

    // `&mut self`: a write that forgot `#[invalidates]`, or a read that cannot be cached.
    async fn touch_user(&mut self, user_id: u64) -> Option<String>;
}

fn main() {}
