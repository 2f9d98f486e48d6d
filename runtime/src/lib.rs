//! # cacheward
//!
//! Turn a store trait into a Redis-cached store at compile time: read-through caching,
//! invalidation on writes, and a cache that fails open (a Redis error, a timeout or an
//! undecodable value is a miss, never an error your callers see).
//!
//! Annotate the trait your database layer already implements with
//! [`#[cached_store]`](macro@cached_store) and you get `CachingX<S>`, a decorator that
//! implements the same trait over any inner store:
//!
//! ```
//! use cacheward::{cached_store, Cache};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! pub struct TenantLlmPolicy { pub tenant_id: String, pub default_model: String }
//!
//! #[derive(Debug, PartialEq)]
//! pub enum StoreError { Unavailable }
//!
//! #[cached_store(key = "copilot:llm:policy:<tenant_id>", ttl = 300)]
//! #[async_trait::async_trait]               // optional: native `async fn` in traits works too
//! pub trait PolicyStore: Send + Sync {
//!     // A read: its parameters cover every placeholder → read-through cached.
//!     async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError>;
//!
//!     // A write: after the inner call succeeds, the key for `tenant_id` is deleted.
//!     #[invalidates]
//!     async fn delete_policy(&self, tenant_id: &str) -> Result<(), StoreError>;
//!
//!     // Placeholders bound to expressions over the parameters.
//!     #[invalidates(tenant_id = policy.tenant_id)]
//!     async fn set_policy(&self, policy: &TenantLlmPolicy) -> Result<(), StoreError>;
//!
//!     // No attribute and no placeholder match: passes straight through to the inner store.
//!     async fn list_tenants(&self) -> Result<Vec<String>, StoreError>;
//! }
//!
//! # struct Database(std::sync::Mutex<Vec<TenantLlmPolicy>>);
//! # #[async_trait::async_trait]
//! # impl PolicyStore for Database {
//! #     async fn get_policy(&self, t: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
//! #         Ok(self.0.lock().unwrap().iter().find(|p| p.tenant_id == t).cloned())
//! #     }
//! #     async fn delete_policy(&self, t: &str) -> Result<(), StoreError> {
//! #         self.0.lock().unwrap().retain(|p| p.tenant_id != t); Ok(())
//! #     }
//! #     async fn set_policy(&self, p: &TenantLlmPolicy) -> Result<(), StoreError> {
//! #         self.0.lock().unwrap().push(p.clone()); Ok(())
//! #     }
//! #     async fn list_tenants(&self) -> Result<Vec<String>, StoreError> { Ok(vec![]) }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let database = Database(Default::default());
//! // `Cache::from_env()` in production: Redis when REDIS_URL is set, pass-through otherwise.
//! let store = CachingPolicyStore::new(database, Cache::memory());
//! let policy = TenantLlmPolicy { tenant_id: "acme".into(), default_model: "gpt-4o".into() };
//!
//! store.set_policy(&policy).await.unwrap();                  // written, key invalidated
//! assert_eq!(store.get_policy("acme").await, Ok(Some(policy.clone())));  // miss → cached
//! assert_eq!(store.get_policy("acme").await, Ok(Some(policy)));          // hit
//! assert_eq!(store.cache().stats().hits, 1);
//! # }
//! ```
//!
//! ## What is generated
//!
//! For `trait X`, a struct `CachingX<S>` with the trait's visibility, `new(inner, cache)`,
//! `inner()`, `cache()`, `into_inner()`, `Clone` when `S: Clone`, `Debug` when
//! `S: Debug`, `key_specs()` (see [`inventory`]), one key builder per template
//! (`CachingX::<S>::get_policy_key("acme")` returns the key `get_policy` reads), and
//! `impl<S: X> X for CachingX<S>`.
//! Generated methods are thin: they build the key and call a helper of the runtime, so
//! `cargo expand` shows a short, hand-written-looking decorator (`docs/expanded.md` in
//! the repository shows one in full).
//!
//! ## Which methods are cached
//!
//! * With a trait-level `key`, a method is cached when it takes `&self`, is async
//!   (`async fn` or `fn … -> impl Future<Output = …>`), carries no `#[invalidates]`, and
//!   has parameters named like every placeholder. `#[uncached]` opts a method out.
//! * `#[cached(key = "...", ttl = ...)]` caches a method under its own template (several
//!   templates in one trait); `#[cached]` alone uses the trait's key.
//! * `#[invalidates]` deletes the trait key after the inner write returns (`Ok` for a
//!   `Result`); `#[invalidates(name = expr)]` binds placeholders to expressions over the
//!   parameters; `#[invalidates(key = "...")]` names another cached template; repeat the
//!   attribute for several keys. Keys are computed before the inner call.
//! * Every other method forwards to the inner store, as do associated types and consts.
//!   A method whose parameters match the trait key's placeholders but that cannot be
//!   cached (sync, `&mut self`) is a compile error unless it is `#[uncached]`.
//!
//! | return type of a cached method | stored | not stored |
//! |---|---|---|
//! | `Result<Option<T>, E>` | `Ok(Some(t))` | `Ok(None)` (unless `cache_none`), `Err` |
//! | `Option<T>` | `Some(t)` | `None` (unless `cache_none`) |
//! | `Result<T, E>` | `Ok(t)` | `Err` |
//! | `T` | `t` | — |
//!
//! Values are stored as JSON (`T: Serialize + DeserializeOwned`). Concurrent misses of
//! one key in one process make a single inner call (single-flight).
//!
//! ## Keys and TTLs, checked at compile time
//!
//! A template is literal text and placeholders `<name>` or `<name.field>`, where `name`
//! is a parameter or a binding. `{…}` marks a Redis Cluster hash tag
//! (`copilot:{<tenant_id>}:policy`). A placeholder's value is any [`KeyPart`]; the
//! encoding escapes everything outside `[A-Za-z0-9._-]`, so user input holding `:`, `*`
//! or `{` can never collide with another key (see [`key`]). Two placeholders must be
//! separated by a character such as `:`, or the key would be ambiguous.
//!
//! `ttl` is required, in seconds (`300`) or as a string (`"5m"`, `"1h30m"`);
//! `ttl_env = "CACHE_TTL_POLICY_SECONDS"` lets that variable override it at run time
//! (read once per process; an unparsable value is logged once and ignored). A method's
//! options override the trait's one by one; a trait-level `ttl_env` overrides only the
//! trait-level `ttl`. In a generic trait, a template names the type parameter its values
//! depend on (`app:item:<T>:<id>`, written with [`KeyName`]), so instantiations never
//! share entries. `crate = "path"` names the runtime for crates that re-export it.
//!
//! Mistakes are compile errors that point at the offending tokens, all reported in one
//! build, for example a trait key that no method reads:
//!
//! ```compile_fail
//! use cacheward::cached_store;
//!
//! // error: the trait-level key `copilot:llm:policy:<tenant>` is read by no method …
//! //        no method has a parameter `tenant` (did you mean `tenant_id`? …)
//! #[cached_store(key = "copilot:llm:policy:<tenant>", ttl = 300)]
//! pub trait PolicyStore: Send + Sync {
//!     async fn get_policy(&self, tenant_id: &str) -> Option<String>;
//! }
//! # fn main() {}
//! ```
//!
//! ## The runtime
//!
//! [`Cache`] is the handle the decorators share: `Cache::from_env()`,
//! `Cache::redis(url)`, `Cache::memory()`, `Cache::pass_through()`, with `get`/`set`/`del`,
//! `health()` and `stats()`. The decorators label every cache operation with its
//! template (in logs and metrics), never with a raw key.
//!
//! More in the repository: `docs/guide.md` (a guide to the macros) and
//! `docs/expanded.md` (the policy store before and after expansion).

#![warn(missing_docs)]

mod backend;
mod breaker;
mod builder;
mod cache;
mod codec;
pub mod config;
mod error;
mod freshness;
mod health;
pub mod key;
mod lease;
mod near;
mod pending;
pub mod ratelimit;
mod redact;
mod stats;
mod tags;
mod telemetry;
mod util;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private;
#[path = "private/inventory.rs"]
pub mod inventory;

pub use backend::Backend;
pub use breaker::CircuitState;
pub use builder::CacheBuilder;
pub use cache::{Cache, DIRECT_LABEL};
pub use cacheward_macros::cached_store;
pub use codec::Codec;
pub use error::ConfigError;
pub use health::CacheHealth;
pub use key::{KeyName, KeyPart};
pub use ratelimit::{Algorithm, Decision, RateLimiter};
pub use stats::CacheStats;

/// The README's examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
