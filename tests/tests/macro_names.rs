//! Decorators work whatever the user's names are, generic traits keep their
//! instantiations apart, and the generated key builders, option overrides and
//! `crate = "..."` do what the guide says. All on `Cache::memory()`.

#![allow(dead_code, async_fn_in_trait, clippy::pedantic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use cacheward::{Cache, KeyName, cached_store};
use serde::{Deserialize, Serialize};

/// User types named like the names a macro might invent or rely on: `S`, `T`,
/// `Cache`, `Result`, `Option`, `core`.
mod user_names {
    use serde::{Deserialize, Serialize};

    pub mod core {}

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub struct S {
        pub id: u64,
    }

    #[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
    pub struct T(pub String);

    /// The store's error type is called `Cache`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Cache;

    pub struct Result;
    pub struct Option;

    #[cacheward::cached_store(key = "names:s:<id>", ttl = 60)]
    pub trait Store: ::core::marker::Send + ::core::marker::Sync {
        async fn get(&self, id: u64) -> ::core::result::Result<::core::option::Option<S>, Cache>;

        #[cached(key = "names:t:<id>")]
        async fn get_t(&self, id: u64) -> ::core::option::Option<T>;

        #[invalidates]
        async fn put(&self, id: u64, s: S) -> ::core::result::Result<(), Cache>;
    }

    #[derive(Default)]
    pub struct Inner {
        pub calls: ::std::sync::atomic::AtomicUsize,
    }

    impl Store for Inner {
        async fn get(&self, id: u64) -> ::core::result::Result<::core::option::Option<S>, Cache> {
            self.calls
                .fetch_add(1, ::std::sync::atomic::Ordering::SeqCst);
            ::core::result::Result::Ok(::core::option::Option::Some(S { id }))
        }

        async fn get_t(&self, id: u64) -> ::core::option::Option<T> {
            ::core::option::Option::Some(T(format!("t{id}")))
        }

        async fn put(&self, _id: u64, _s: S) -> ::core::result::Result<(), Cache> {
            ::core::result::Result::Ok(())
        }
    }
}

/// A trait called `S`, over a type called `T`, in a module with `Result` and
/// `Option` of its own.
mod trait_named_s {
    pub struct Result;
    pub struct Option;
    pub struct T;

    #[cacheward::cached_store(key = "names:trait-s:<id>", ttl = 60)]
    pub trait S: Send + Sync {
        async fn get(&self, id: u64) -> ::core::option::Option<u64>;
    }

    impl S for T {
        async fn get(&self, id: u64) -> ::core::option::Option<u64> {
            ::core::option::Option::Some(id * 10)
        }
    }
}

/// A generic trait whose type parameter is called `S`.
mod generic_named_s {
    #[cacheward::cached_store(key = "names:generic:<S>:<id>", ttl = 60)]
    pub trait Store<S>: Send + Sync
    where
        S: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        async fn get(&self, id: u64) -> Option<S>;
    }

    pub struct Numbers;

    impl Store<u64> for Numbers {
        async fn get(&self, id: u64) -> Option<u64> {
            Some(id + 1)
        }
    }
}

#[tokio::test]
async fn decorators_work_with_colliding_user_names() {
    use generic_named_s::Store as _;
    use trait_named_s::S as _;
    use user_names::Store as _;

    let store = user_names::CachingStore::new(user_names::Inner::default(), Cache::memory());
    assert_eq!(store.get(1).await, Ok(Some(user_names::S { id: 1 })));
    assert_eq!(store.get(1).await, Ok(Some(user_names::S { id: 1 })));
    assert_eq!(store.inner().calls.load(Ordering::SeqCst), 1, "a hit");
    assert_eq!(store.get_t(2).await, Some(user_names::T("t2".into())));
    assert_eq!(store.put(1, user_names::S { id: 1 }).await, Ok(()));
    assert_eq!(store.get(1).await, Ok(Some(user_names::S { id: 1 })));
    assert_eq!(
        store.inner().calls.load(Ordering::SeqCst),
        2,
        "put invalidated"
    );

    let s = trait_named_s::CachingS::new(trait_named_s::T, Cache::memory());
    assert_eq!(s.get(4).await, Some(40));

    let g = generic_named_s::CachingStore::new(generic_named_s::Numbers, Cache::memory());
    assert_eq!(g.get(4).await, Some(5));
    assert_eq!(
        generic_named_s::CachingStore::<()>::get_key::<u64>(&4),
        "names:generic:u64:4"
    );
    assert_eq!(g.cache().get::<u64>("names:generic:u64:4").await, Some(5));
}

/// `trait Repo<T>` with one key template, instantiated for two value types over one
/// cache: each decorator gets its own answers.
#[cached_store(key = "app:item:<T>:<id>", ttl = 60)]
pub trait Repo<T>: Send + Sync
where
    T: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    async fn get(&self, id: &str) -> Option<T>;

    #[invalidates]
    async fn delete(&self, id: &str) -> bool;
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: String,
    pub title: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
}

impl KeyName for Conversation {
    const KEY_NAME: &'static str = "conversation";
}

impl KeyName for User {
    const KEY_NAME: &'static str = "user";
}

struct Convs;
struct Users {
    reads: AtomicUsize,
}

impl Repo<Conversation> for Convs {
    async fn get(&self, id: &str) -> Option<Conversation> {
        Some(Conversation {
            id: format!("conversation-{id}"),
            title: "hello".into(),
        })
    }
    async fn delete(&self, _id: &str) -> bool {
        true
    }
}

impl Repo<User> for Users {
    async fn get(&self, id: &str) -> Option<User> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Some(User {
            id: format!("user-{id}"),
        })
    }
    async fn delete(&self, _id: &str) -> bool {
        true
    }
}

#[tokio::test]
async fn generic_instantiations_never_share_entries() {
    let cache = Cache::memory();
    let convs = CachingRepo::new(Convs, cache.clone());
    let users = CachingRepo::new(
        Users {
            reads: AtomicUsize::new(0),
        },
        cache.clone(),
    );
    // The conversation is cached first; the user store must still answer a user.
    let conversation = convs.get("1").await.unwrap();
    assert_eq!(conversation.id, "conversation-1");
    assert_eq!(convs.get("1").await.unwrap(), conversation);
    assert_eq!(users.get("1").await.unwrap().id, "user-1");
    assert_eq!(users.get("1").await.unwrap().id, "user-1");
    assert_eq!(users.inner().reads.load(Ordering::SeqCst), 1, "a hit");

    let conversation_key = CachingRepo::<()>::get_key::<Conversation>("1");
    let user_key = CachingRepo::<()>::get_key::<User>("1");
    assert_eq!(conversation_key, "app:item:conversation:1");
    assert_eq!(user_key, "app:item:user:1");
    assert_eq!(
        cache.get::<Conversation>(&conversation_key).await,
        Some(conversation)
    );
    assert_eq!(
        cache.get::<User>(&user_key).await.map(|u| u.id),
        Some("user-1".to_owned())
    );

    // Invalidation deletes only its own instantiation's key.
    assert!(users.delete("1").await);
    assert_eq!(cache.get::<User>(&user_key).await, None);
    assert!(cache.get::<Conversation>(&conversation_key).await.is_some());
}

/// Option overrides and the key builders of a non-generic trait.
#[cached_store(ttl = 60, ttl_env = "CACHE_TTL_NAMES_SECONDS", cache_none)]
pub trait Profiles: Send + Sync {
    /// Inherits `cache_none`, `ttl` and `ttl_env`.
    #[cached(key = "names:profile:<tenant_id>:<user.id>")]
    async fn profile(&self, tenant_id: &str, user: &User) -> Option<String>;

    /// `cache_none = false` overrides the trait; its own `ttl` is not overridden
    /// by the trait's `ttl_env`.
    #[cached(key = "names:avatar:<id>", cache_none = false, ttl = 5)]
    async fn avatar(&self, id: u64) -> Option<String>;

    /// Forwarded, and listed as such.
    #[uncached]
    async fn raw(&self, id: u64) -> Option<String>;

    /// Forwarded, and listed as such.
    fn label(&self) -> &'static str;
}

#[derive(Default)]
struct Absent {
    profile_calls: AtomicUsize,
    avatar_calls: AtomicUsize,
}

impl Profiles for Absent {
    async fn profile(&self, _tenant_id: &str, _user: &User) -> Option<String> {
        self.profile_calls.fetch_add(1, Ordering::SeqCst);
        None
    }
    async fn avatar(&self, _id: u64) -> Option<String> {
        self.avatar_calls.fetch_add(1, Ordering::SeqCst);
        None
    }
    async fn raw(&self, _id: u64) -> Option<String> {
        None
    }
    fn label(&self) -> &'static str {
        "absent"
    }
}

#[tokio::test]
async fn method_options_override_the_trait() {
    let store = CachingProfiles::new(Absent::default(), Cache::memory());
    let user = User { id: "u:1".into() };
    assert_eq!(store.profile("acme", &user).await, None);
    assert_eq!(store.profile("acme", &user).await, None);
    assert_eq!(
        store.inner().profile_calls.load(Ordering::SeqCst),
        1,
        "cache_none from the trait: the absent answer is stored"
    );
    assert_eq!(store.avatar(7).await, None);
    assert_eq!(store.avatar(7).await, None);
    assert_eq!(
        store.inner().avatar_calls.load(Ordering::SeqCst),
        2,
        "cache_none = false on the method: the absent answer is not stored"
    );

    let specs = CachingProfiles::<()>::key_specs();
    assert_eq!(specs[0].ttl_env, Some("CACHE_TTL_NAMES_SECONDS"));
    assert!(specs[0].cache_none);
    assert_eq!(specs[1].ttl_env, None, "a method's own ttl is its own");
    assert_eq!(specs[1].ttl, std::time::Duration::from_secs(5));
    assert!(!specs[1].cache_none);

    // The inventory lists what is not cached.
    assert_eq!(CachingProfiles::<()>::forwarded().methods, ["raw", "label"]);
    let inventory = cacheward::inventory::Inventory::new()
        .with(specs)
        .with_forwarded(CachingProfiles::<()>::forwarded());
    assert!(
        inventory
            .to_string()
            .contains("| Profiles | `raw`, `label` |"),
        "{inventory}"
    );

    // The builder writes the key the decorator reads, escaping values the same way.
    let key = CachingProfiles::<()>::profile_key("acme", "u:1");
    assert_eq!(key, "names:profile:acme:u%3A1");
    assert_eq!(
        store.cache().get::<Option<String>>(&key).await,
        Some(None),
        "the stored absent answer is under the builder's key"
    );
}

/// A crate that re-exports cacheward names it with `crate = "..."`.
mod platform {
    pub use ::cacheward as caching;
}

#[cached_store(crate = "crate::platform::caching", key = "names:crate:<id>", ttl = 60)]
pub trait ViaReexport: Send + Sync {
    async fn get(&self, id: u64) -> Option<u64>;
}

struct Plain;

impl ViaReexport for Plain {
    async fn get(&self, id: u64) -> Option<u64> {
        Some(id)
    }
}

#[tokio::test]
async fn crate_path_names_the_runtime() {
    let store = CachingViaReexport::new(Plain, Cache::memory());
    assert_eq!(store.get(3).await, Some(3));
    assert_eq!(store.get(3).await, Some(3));
    assert_eq!(store.cache().stats().hits, 1);
}
