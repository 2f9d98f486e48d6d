use cacheward::{Cache, cached_store};

#[cached_store(key = "app:item:<T>:<id>", ttl = 60)]
pub trait Repo<T: Send + Sync + serde::Serialize + serde::de::DeserializeOwned>: Send + Sync {
    async fn get(&self, id: u64) -> Option<T>;
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct User;

pub struct Users;

impl Repo<User> for Users {
    async fn get(&self, _id: u64) -> Option<User> {
        None
    }
}

async fn read(repo: &impl Repo<User>) -> Option<User> {
    repo.get(1).await
}

fn main() {
    // `User` has no `KeyName`, so the decorator is not a `Repo<User>`.
    let _ = read(&CachingRepo::new(Users, Cache::memory()));
}
