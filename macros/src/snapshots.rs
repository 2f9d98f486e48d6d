//! Expansion snapshots: each `tests/expand/NAME.rs` is expanded with this crate's own
//! code, pretty-printed with prettyplease and compared with `NAME.expanded.rs`, so a
//! change in the generated code shows in review. `docs/expanded.md` is produced from
//! the policy store's snapshot and checked the same way.
//!
//! `UPDATE_EXPAND=1 cargo test -p cacheward-macros` rewrites the snapshots and the doc.

use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::{Item, ItemTrait};

/// Expands every `#[cached_store]` trait of `file`, recursing into inline modules.
pub(crate) fn expand_items(items: Vec<Item>) -> Vec<Item> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Trait(mut t) => match take_cached_store(&mut t) {
                Some(args) => {
                    let tokens = crate::expand::cached_store(args, t.into_token_stream());
                    let file: syn::File =
                        syn::parse2(tokens).expect("the expansion parses as items");
                    out.extend(file.items);
                }
                None => out.push(Item::Trait(t)),
            },
            Item::Mod(mut m) => {
                if let Some((brace, items)) = m.content.take() {
                    m.content = Some((brace, expand_items(items)));
                }
                out.push(Item::Mod(m));
            }
            other => out.push(other),
        }
    }
    out
}

fn take_cached_store(item: &mut ItemTrait) -> Option<proc_macro2::TokenStream> {
    let index = item.attrs.iter().position(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "cached_store")
    })?;
    let attr = item.attrs.remove(index);
    Some(match attr.meta {
        syn::Meta::List(list) => list.tokens,
        _ => proc_macro2::TokenStream::new(),
    })
}

/// The pretty-printed expansion of a source file.
pub(crate) fn expand_source(source: &str) -> String {
    let mut file = syn::parse_file(source).expect("the snapshot input parses");
    file.items = expand_items(std::mem::take(&mut file.items));
    prettyplease::unparse(&file)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn update() -> bool {
    std::env::var_os("UPDATE_EXPAND").is_some_and(|v| v == "1")
}

/// Compares `actual` with the file at `path`, or rewrites it under `UPDATE_EXPAND=1`.
fn check(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if update() {
        std::fs::write(path, actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        let first_difference = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()))
            + 1;
        failures.push(format!(
            "{} is out of date (first difference at line {first_difference}); run `UPDATE_EXPAND=1 cargo test -p cacheward-macros` and review the diff",
            path.display()
        ));
    }
}

const DOC_HEAD: &str = "\
# What `#[cached_store]` writes

This page is generated from the expansion snapshot `tests/expand/policy_store.expanded.rs`
(a test fails if the two drift apart; `UPDATE_EXPAND=1 cargo test -p cacheward-macros`
regenerates both). It shows a policy store before and after the macro, as
`cargo expand` would show it with `#[async_trait]` left unexpanded.

## Before

";

const DOC_MIDDLE: &str = "
## After

";

const DOC_TAIL: &str = "
## Reading the expansion

- **The trait is emitted unchanged**, minus the `#[invalidates]`/`#[cached]`/`#[uncached]`
  markers. `#[async_trait]` stays on it and expands after `#[cached_store]` (which is why
  `#[cached_store]` must be written above it).
- **`CachingPolicyStore<S>`** has the trait's visibility and two fields: the inner store
  and the `Cache`. It is the same type whether Redis is up, down or not configured.
- **Everything else sits in `const _: () = { … };`** so the helper items do not leak into
  your module: one `static` key spec per template (template, TTL, `ttl_env`, value type,
  readers, invalidators; its template is the label stats and metrics group by), the
  constructor and accessors, one key builder per template (`get_policy_key`, which
  builds the key exactly as the decorator does, for code that invalidates without the
  trait), `forwarded()` (the methods passed through uncached, for the inventory),
  `Clone` and `Debug` when `S` has them, and the trait impl.
- **Invented names avoid yours**: the type parameter is `S` unless the trait uses that
  identifier anywhere (then `S0`, `S1`, …), and the same goes for the statics.
- **A cached method** builds its key with one `String::with_capacity` and one
  `KeyPart::write_key_part` per placeholder (which escapes `:`, `*`, `{`, …), then calls
  `::cacheward::__private::read_through` with the key spec, the return shape (`ResultOption`
  here: `Ok(Some(_))` is stored, `Ok(None)` and `Err` are not), how a hit becomes the
  value (`__near`) and a closure that makes the inner call. The closure only runs on a
  miss; concurrent misses of one key share one call.
- **`__near`** is the answer of a probe of the stored type (autoref specialization):
  `Cloned` when it is `Clone + Send + Sync + 'static`, so that a near-cache hit is a clone
  of the value the entry holds decoded, else `Decode` (the bytes are decoded on each hit).
  A value type with a lifetime or a type parameter gets `Decode` without a probe. See
  `docs/near-cache.md`.
- **An invalidating method** builds its keys *before* the inner call (arguments may be
  moved into it), awaits the inner write, then `invalidate_if_ok` deletes the keys if the
  result is `Ok` (a failed delete is logged and counted, never returned).
- **Other methods forward** with fully qualified calls (`<S as PolicyStore>::list_tenants`),
  so an inherent method of `S` with the same name can never be picked by mistake.
";

fn doc(before: &str, after: &str) -> String {
    format!("{DOC_HEAD}```rust\n{before}```\n{DOC_MIDDLE}```rust\n{after}```\n{DOC_TAIL}")
}

#[test]
fn expansions_match_snapshots() {
    let dir = workspace().join("tests/expand");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/expand exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs")
                && !p.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 3,
        "the expansion inputs are missing: {inputs:?}"
    );

    let mut failures = Vec::new();
    for input in &inputs {
        let source = std::fs::read_to_string(input).expect("read the input");
        let expanded = expand_source(&source);
        check(
            &input.with_extension("expanded.rs"),
            &expanded,
            &mut failures,
        );
        if input.file_stem().is_some_and(|s| s == "policy_store") {
            let doc = doc(&source, &expanded);
            check(&workspace().join("docs/expanded.md"), &doc, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn expansion_uses_absolute_paths_only() {
    let source = std::fs::read_to_string(workspace().join("tests/expand/policy_store.rs")).unwrap();
    let expanded = expand_source(&source);
    // Every std item the macro names is written `::core::…`/`::std::…`: a name that is
    // not preceded by `::` would resolve to whatever the user's module calls it.
    for word in [
        "Result::",
        "Option::",
        "Some(",
        "Ok(",
        "Box::",
        "String::",
        "Vec::",
        "Duration::",
    ] {
        for (at, _) in expanded.match_indices(word) {
            let before = &expanded[..at];
            assert!(
                before.ends_with("::"),
                "relative std path `{word}` in: {}",
                expanded[at.saturating_sub(60)..at + word.len()].to_owned()
            );
        }
    }
    assert!(expanded.contains("::cacheward::__private::read_through("));
    assert!(expanded.contains("#[automatically_derived]"));
}

#[test]
fn crate_path_replaces_every_runtime_path() {
    let source = std::fs::read_to_string(workspace().join("tests/expand/policy_store.rs"))
        .unwrap()
        .replace(
            "#[cached_store(",
            "#[cached_store(crate = \"::platform::caching\", ",
        );
    assert!(
        source.contains("crate = "),
        "the input has no #[cached_store("
    );
    let expanded = expand_source(&source);
    assert!(
        !expanded.contains("::cacheward::"),
        "a runtime path ignores `crate`:\n{expanded}"
    );
    assert!(expanded.contains("::platform::caching::__private::read_through("));
    assert!(expanded.contains("cache: ::platform::caching::Cache,"));
}
