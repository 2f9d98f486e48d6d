//! The expansion refers to nothing by a name the user can shadow: this module shadows
//! `core`, `std`, `Result`, `Ok`, `Err`, `Some`, `None`, `Option`, `Box`, `String`,
//! `Vec`, `Clone`, `Debug`, `Send`, `Sync` and `Future`, and the decorators still compile and work.

#![allow(dead_code, non_camel_case_types, async_fn_in_trait, clippy::pedantic)]

mod shadowed {
    mod core {}
    mod std {}
    pub struct Result;
    pub struct Ok;
    pub struct Err;
    pub struct Some;
    pub struct None;
    pub struct Option;
    pub struct Box;
    pub struct String;
    pub struct Vec;
    pub struct Clone;
    pub struct Debug;
    pub struct Future;
    pub struct Duration;
    pub struct KeyPart;
    pub struct Cache;
    #[allow(non_snake_case)]
    pub fn read_through() {}

    #[derive(::serde::Serialize, ::serde::Deserialize, PartialEq, ::core::fmt::Debug)]
    pub struct Value(pub u64);

    #[::cacheward::cached_store(key = "hygiene:<id>", ttl = 60)]
    pub trait Store: ::core::marker::Send + ::core::marker::Sync {
        async fn get(&self, id: u64) -> ::core::option::Option<Value>;
        async fn get_result(&self, id: u64) -> ::core::result::Result<Value, ()>;
        #[invalidates]
        async fn put(&self, id: u64) -> ::core::result::Result<(), ()>;
    }

    #[derive(::core::clone::Clone, ::core::fmt::Debug)]
    pub struct Inner;

    impl Store for Inner {
        async fn get(&self, id: u64) -> ::core::option::Option<Value> {
            ::core::option::Option::Some(Value(id))
        }
        async fn get_result(&self, id: u64) -> ::core::result::Result<Value, ()> {
            ::core::result::Result::Ok(Value(id))
        }
        async fn put(&self, _id: u64) -> ::core::result::Result<(), ()> {
            ::core::result::Result::Ok(())
        }
    }
}

#[tokio::test]
async fn expansion_survives_shadowed_names() {
    use shadowed::Store as _;
    let store = shadowed::CachingStore::new(shadowed::Inner, cacheward::Cache::memory());
    assert_eq!(store.get(4).await, Some(shadowed::Value(4)));
    assert_eq!(store.get(4).await, Some(shadowed::Value(4)));
    assert_eq!(store.get_result(5).await, Ok(shadowed::Value(5)));
    assert_eq!(store.put(4).await, Ok(()));
    assert_eq!(store.cache().stats().hits, 1);
    let debug = format!("{:?}", store.clone());
    assert!(
        debug.starts_with("CachingStore { inner: Inner, cache: "),
        "{debug}"
    );
}
