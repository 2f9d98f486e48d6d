use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub struct Store {
    pub user_id: u64,
}

fn main() {}
