use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60, ttl = "5m")]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;

    #[cached(key = "app:team:<team_id>", cache_none, cache_none = false)]
    async fn get_team(&self, team_id: u64) -> Option<String>;
}

fn main() {}
