use cacheward::cached_store;

// Three independent mistakes: all three are reported in one build.
#[cached_store(ttl = 60, color = "blue")]
pub trait Store: Send + Sync {
    #[cached(key = "app:user:<user>")]
    async fn get_user(&self, user_id: u64) -> Option<String>;

    #[cached(key = "app:team:<team_id>", ttl = 0)]
    async fn get_team(&self, team_id: u64) -> Option<String>;
}

fn main() {}
