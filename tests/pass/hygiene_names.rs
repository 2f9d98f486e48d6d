//! Compiles without a warning whatever the user's names: traits called `S`, `T` and
//! `Cache`, types called `S`, `T`, `Cache`, `Result` and `Option`, a module `core`, a
//! generic parameter `S`, and a static named like the macro's own.

#![deny(warnings)]
#![allow(dead_code, async_fn_in_trait)]

mod core {}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Value;

mod traits {
    use cacheward::cached_store;

    #[cached_store(key = "pass:s:<id>", ttl = 60)]
    pub trait S: Send + Sync {
        async fn get(&self, id: u64) -> Option<super::Value>;
    }

    #[cached_store(key = "pass:t:<id>", ttl = 60)]
    pub trait T: Send + Sync {
        async fn get(&self, id: u64) -> Option<super::Value>;
    }

    #[cached_store(key = "pass:cache:<id>", ttl = 60)]
    pub trait Cache: Send + Sync {
        async fn get(&self, id: u64) -> Option<super::Value>;
    }
}

mod types {
    use cacheward::cached_store;

    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct S;
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct T;
    pub struct Cache;
    pub struct Result;
    pub struct Option;
    pub static __KEY_0: u8 = 0;
    pub static __KEY_SPECS: u8 = 0;

    #[cached_store(key = "pass:types:<id>", ttl = 60)]
    pub trait Store: Send + Sync {
        async fn s(&self, id: u64) -> ::core::result::Result<::core::option::Option<S>, Cache>;
        #[cached(key = "pass:types:t:<id>")]
        async fn t(&self, id: u64) -> ::core::option::Option<T>;
        #[uncached]
        fn statics(&self, id: u64) -> (&'static u8, &'static u8) {
            let _ = id;
            (&__KEY_0, &__KEY_SPECS)
        }
    }

    #[cached_store(key = "pass:generic:<S>:<id>", ttl = 60)]
    pub trait Generic<S>: Send + Sync
    where
        S: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        async fn get(&self, id: u64) -> ::core::option::Option<S>;
    }
}

fn main() {
    fn named<X>() {}
    named::<traits::CachingS<()>>();
    named::<traits::CachingT<()>>();
    named::<traits::CachingCache<()>>();
    named::<types::CachingStore<()>>();
    named::<types::CachingGeneric<()>>();
}
