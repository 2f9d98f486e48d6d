use cacheward::cached_store;

pub struct User {
    pub id: u64,
}

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait Store: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;

    #[invalidates]
    async fn save_user(&self, user: &User) -> bool;
}

fn main() {}
