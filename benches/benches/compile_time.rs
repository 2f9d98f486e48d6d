//! Workload 7: how long `cargo build` of a crate with a 10-method `#[cached_store]` trait
//! takes, against the same decorator written by hand.
//!
//! `cargo bench -p cacheward-benches --bench compile_time -- [--runs N] [--doc PATH]`
//!
//! Two tiny crates are generated in a temporary directory, both depending on this
//! workspace's `cacheward` by path and sharing one target directory. Both are built once
//! (so every dependency, the runtime and the proc-macro are compiled and cached), then
//! each is edited and rebuilt `N` times (default 5), alternating, timing only the rebuild
//! of that crate. The table shows the median and range.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cacheward_benches::harness::{median, range};
use cacheward_benches::report::{self, Table};

const COMMON: &str = r#"
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub tenant_id: String,
    pub model: String,
    pub max_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub used: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);
"#;

const ANNOTATED: &str = r#"
#[cacheward::cached_store(ttl = 300)]
#[async_trait::async_trait]
pub trait BigStore: Send + Sync {
    #[cached(key = "ct:tenant:<id>")]
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;

    #[cached(key = "ct:policy:<tenant_id>")]
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, StoreError>;

    #[cached(key = "ct:quota:<tenant_id>:<month>")]
    async fn get_quota(&self, tenant_id: &str, month: u32) -> Result<Quota, StoreError>;

    #[cached(key = "ct:members:<tenant_id>")]
    async fn list_members(&self, tenant_id: &str) -> Result<Vec<String>, StoreError>;

    #[cached(key = "ct:flag:<tenant_id>:<flag>")]
    async fn get_flag(&self, tenant_id: &str, flag: &str) -> Option<bool>;

    #[cached(key = "ct:count:<tenant_id>", ttl = 60)]
    async fn count_requests(&self, tenant_id: &str) -> u64;

    #[invalidates(key = "ct:tenant:<id>")]
    async fn delete_tenant(&self, id: &str) -> Result<(), StoreError>;

    #[invalidates(key = "ct:policy:<tenant_id>", tenant_id = policy.tenant_id)]
    async fn set_policy(&self, policy: &Policy) -> Result<(), StoreError>;

    #[invalidates(key = "ct:quota:<tenant_id>:<month>")]
    async fn reset_quota(&self, tenant_id: &str, month: u32) -> Result<(), StoreError>;

    async fn ping(&self) -> Result<(), StoreError>;
}

/// Uses the generated type, so the build fails if nothing was generated.
pub fn wrap<S: BigStore>(inner: S, cache: cacheward::Cache) -> CachingBigStore<S> {
    CachingBigStore::new(inner, cache)
}
"#;

const BY_HAND: &str = r#"
use std::time::Duration;

use cacheward::Cache;
use cacheward::key::KeyPart;

#[async_trait::async_trait]
pub trait BigStore: Send + Sync {
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, StoreError>;
    async fn get_quota(&self, tenant_id: &str, month: u32) -> Result<Quota, StoreError>;
    async fn list_members(&self, tenant_id: &str) -> Result<Vec<String>, StoreError>;
    async fn get_flag(&self, tenant_id: &str, flag: &str) -> Option<bool>;
    async fn count_requests(&self, tenant_id: &str) -> u64;
    async fn delete_tenant(&self, id: &str) -> Result<(), StoreError>;
    async fn set_policy(&self, policy: &Policy) -> Result<(), StoreError>;
    async fn reset_quota(&self, tenant_id: &str, month: u32) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}

const TTL: Duration = Duration::from_secs(300);

fn key(prefix: &str, parts: &[&(dyn KeyPart + Sync)]) -> String {
    let mut k = String::from(prefix);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(':');
        }
        p.write_key_part(&mut k);
    }
    k
}

#[derive(Debug, Clone)]
pub struct CachingBigStore<S> {
    inner: S,
    cache: Cache,
}

impl<S> CachingBigStore<S> {
    pub fn new(inner: S, cache: Cache) -> Self {
        CachingBigStore { inner, cache }
    }
    pub fn inner(&self) -> &S {
        &self.inner
    }
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
    pub fn into_inner(self) -> S {
        self.inner
    }
}

#[async_trait::async_trait]
impl<S: BigStore> BigStore for CachingBigStore<S> {
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let k = key("ct:tenant:", &[&id]);
        if let Some(v) = self.cache.get(&k).await {
            return Ok(Some(v));
        }
        let v = self.inner.get_tenant(id).await?;
        if let Some(v) = &v {
            self.cache.set(&k, v, TTL).await;
        }
        Ok(v)
    }

    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, StoreError> {
        let k = key("ct:policy:", &[&tenant_id]);
        if let Some(v) = self.cache.get(&k).await {
            return Ok(Some(v));
        }
        let v = self.inner.get_policy(tenant_id).await?;
        if let Some(v) = &v {
            self.cache.set(&k, v, TTL).await;
        }
        Ok(v)
    }

    async fn get_quota(&self, tenant_id: &str, month: u32) -> Result<Quota, StoreError> {
        let k = key("ct:quota:", &[&tenant_id, &month]);
        if let Some(v) = self.cache.get(&k).await {
            return Ok(v);
        }
        let v = self.inner.get_quota(tenant_id, month).await?;
        self.cache.set(&k, &v, TTL).await;
        Ok(v)
    }

    async fn list_members(&self, tenant_id: &str) -> Result<Vec<String>, StoreError> {
        let k = key("ct:members:", &[&tenant_id]);
        if let Some(v) = self.cache.get(&k).await {
            return Ok(v);
        }
        let v = self.inner.list_members(tenant_id).await?;
        self.cache.set(&k, &v, TTL).await;
        Ok(v)
    }

    async fn get_flag(&self, tenant_id: &str, flag: &str) -> Option<bool> {
        let k = key("ct:flag:", &[&tenant_id, &flag]);
        if let Some(v) = self.cache.get(&k).await {
            return Some(v);
        }
        let v = self.inner.get_flag(tenant_id, flag).await;
        if let Some(v) = &v {
            self.cache.set(&k, v, TTL).await;
        }
        v
    }

    async fn count_requests(&self, tenant_id: &str) -> u64 {
        let k = key("ct:count:", &[&tenant_id]);
        if let Some(v) = self.cache.get(&k).await {
            return v;
        }
        let v = self.inner.count_requests(tenant_id).await;
        self.cache.set(&k, &v, Duration::from_secs(60)).await;
        v
    }

    async fn delete_tenant(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_tenant(id).await?;
        self.cache.del(&key("ct:tenant:", &[&id])).await;
        Ok(())
    }

    async fn set_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        self.inner.set_policy(policy).await?;
        self.cache.del(&key("ct:policy:", &[&policy.tenant_id])).await;
        Ok(())
    }

    async fn reset_quota(&self, tenant_id: &str, month: u32) -> Result<(), StoreError> {
        self.inner.reset_quota(tenant_id, month).await?;
        self.cache.del(&key("ct:quota:", &[&tenant_id, &month])).await;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// The same entry point as the annotated crate.
pub fn wrap<S: BigStore>(inner: S, cache: cacheward::Cache) -> CachingBigStore<S> {
    CachingBigStore::new(inner, cache)
}
"#;

const USE_IT: &str = r#"
/// A store that answers at once, so both crates instantiate the decorator for a concrete
/// type and the build includes code generation, as in an application.
#[derive(Debug, Clone)]
pub struct NullStore;

#[async_trait::async_trait]
impl BigStore for NullStore {
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(Some(Tenant { id: id.to_owned(), name: String::new() }))
    }
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, StoreError> {
        Ok(Some(Policy { tenant_id: tenant_id.to_owned(), model: String::new(), max_tokens: 1 }))
    }
    async fn get_quota(&self, _tenant_id: &str, _month: u32) -> Result<Quota, StoreError> {
        Ok(Quota { used: 0, limit: 1 })
    }
    async fn list_members(&self, _tenant_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn get_flag(&self, _tenant_id: &str, _flag: &str) -> Option<bool> {
        Some(true)
    }
    async fn count_requests(&self, _tenant_id: &str) -> u64 {
        1
    }
    async fn delete_tenant(&self, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn set_policy(&self, _policy: &Policy) -> Result<(), StoreError> {
        Ok(())
    }
    async fn reset_quota(&self, _tenant_id: &str, _month: u32) -> Result<(), StoreError> {
        Ok(())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Calls every method of the decorated store once.
pub async fn exercise(cache: cacheward::Cache) -> usize {
    let s = wrap(NullStore, cache);
    let p = Policy { tenant_id: "t".into(), model: String::new(), max_tokens: 1 };
    let mut n = 0;
    n += usize::from(s.get_tenant("t").await.is_ok());
    n += usize::from(s.get_policy("t").await.is_ok());
    n += usize::from(s.get_quota("t", 11).await.is_ok());
    n += usize::from(s.list_members("t").await.is_ok());
    n += usize::from(s.get_flag("t", "f").await.is_some());
    n += usize::try_from(s.count_requests("t").await).unwrap_or(0);
    n += usize::from(s.delete_tenant("t").await.is_ok());
    n += usize::from(s.set_policy(&p).await.is_ok());
    n += usize::from(s.reset_quota("t", 11).await.is_ok());
    n += usize::from(s.ping().await.is_ok());
    n
}

/// Polls [`exercise`] once, so its whole call tree is code-generated in this crate.
pub fn poll_exercise(cache: cacheward::Cache) -> Option<usize> {
    use std::future::Future as _;
    let mut fut = std::pin::pin!(exercise(cache));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(n) => Some(n),
        std::task::Poll::Pending => None,
    }
}
"#;

struct Args {
    runs: usize,
    doc: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args { runs: 5, doc: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--quick" => a.runs = 1,
            "--doc" => a.doc = Some(it.next().expect("--doc PATH").into()),
            _ => {}
        }
    }
    a
}

fn write_crate(dir: &Path, name: &str, runtime: &Path, body: &str) {
    std::fs::create_dir_all(dir.join("src")).expect("create crate dir");
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\ncacheward = {{ path = {runtime:?} }}\nasync-trait = \"0.1\"\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("write manifest");
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("{COMMON}\n{body}\n{USE_IT}"),
    )
    .expect("write lib.rs");
}

fn cargo_build(dir: &Path, target: &Path) -> Result<Duration, String> {
    let start = Instant::now();
    let out = Command::new("cargo")
        .args(["build", "--quiet", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        // Each timed build compiles the whole crate (macro expansion, type checking,
        // code generation), not an incremental diff of a comment.
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("run cargo: {e}"))?;
    let elapsed = start.elapsed();
    if out.status.success() {
        Ok(elapsed)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn main() {
    let args = args();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let root = std::env::temp_dir().join(format!("cacheward-compile-time-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("temp dir");
    std::fs::copy(
        workspace.join("rust-toolchain.toml"),
        root.join("rust-toolchain.toml"),
    )
    .expect("copy rust-toolchain.toml");
    let target = root.join("target");
    let runtime = workspace.join("runtime");
    let crates = [("annotated", ANNOTATED), ("by-hand", BY_HAND)];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); crates.len()];
    let mut errors: Vec<Option<String>> = vec![None; crates.len()];
    for (name, body) in crates {
        let dir = root.join(name);
        write_crate(&dir, &format!("ct-{name}"), &runtime, body);
        std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy lock");
        std::fs::copy(
            workspace.join("rust-toolchain.toml"),
            dir.join("rust-toolchain.toml"),
        )
        .expect("copy toolchain");
    }
    // Warm: every dependency compiled once into the shared target directory.
    for (i, (name, _)) in crates.iter().enumerate() {
        if let Err(e) = cargo_build(&root.join(name), &target) {
            eprintln!("compile_time: {name} does not build:\n{e}");
            errors[i] = Some(e);
        }
    }
    for run in 0..args.runs {
        for (i, (name, body)) in crates.iter().enumerate() {
            if errors[i].is_some() {
                continue;
            }
            let dir = root.join(name);
            std::fs::write(
                dir.join("src/lib.rs"),
                format!("{COMMON}\n{body}\n{USE_IT}\n// edit {run}\n"),
            )
            .expect("edit lib.rs");
            match cargo_build(&dir, &target) {
                Ok(d) => {
                    eprintln!("compile_time: {name} run {run}: {d:?}");
                    times[i].push(d.as_secs_f64());
                }
                Err(e) => errors[i] = Some(e),
            }
        }
    }
    let started = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut md = format!(
        "_Generated by `cargo bench -p cacheward-benches --bench compile_time` on {started}: \
         {} rebuild(s) per crate, dev profile without incremental compilation, dependencies already compiled._\n\n",
        args.runs
    );
    let mut t = Table::new(&["crate", "`cargo build` median s", "min–max s"]);
    let labels = [
        "10-method trait with `#[cached_store]`",
        "same trait + decorator written by hand",
    ];
    for (i, label) in labels.iter().enumerate() {
        if let Some(e) = &errors[i] {
            let first = e
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or("build failed")
                .replace('|', "\\|")
                .replace('`', "'");
            t.row(vec![
                (*label).to_owned(),
                format!("not measured: does not build (`{first}`)"),
                "-".into(),
            ]);
        } else {
            let (lo, hi) = range(&times[i]);
            t.row(vec![
                (*label).to_owned(),
                format!("{:.2}", median(&times[i])),
                format!("{lo:.2}–{hi:.2}"),
            ]);
        }
    }
    md.push_str(&t.to_markdown());
    if errors.iter().all(Option::is_none) {
        let r = median(&times[0]) / median(&times[1]);
        md.push_str(&format!("\nAnnotated / by hand: {}.\n", report::ratio(r)));
    }
    println!("{md}");
    if let Some(path) = &args.doc {
        report::splice_file(path, "compile-time", &md);
    }
    let _ = std::fs::remove_dir_all(&root);
}
