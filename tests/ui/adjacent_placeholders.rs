use cacheward::cached_store;

// `-` can appear inside an encoded value, so it cannot separate two placeholders:
// ("a-b", "c") and ("a", "b-c") would share the key `app:a-b-c`.
#[cached_store(key = "app:<tenant_id>-<user_id>", ttl = 60)]
pub trait Store: Send + Sync {
    async fn get_user(&self, tenant_id: &str, user_id: &str) -> Option<String>;
}

fn main() {}
