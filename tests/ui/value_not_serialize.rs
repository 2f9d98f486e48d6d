use cacheward::cached_store;

pub struct Opaque;

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait Store: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<Opaque>;
}

fn main() {}
