//! Cache keys: the [`KeyPart`] trait and the injective encoding of placeholder values.
//!
//! A key template such as `copilot:llm:policy:<tenant_id>` is literal text with
//! placeholders. Each placeholder's value is written by [`KeyPart::write_key_part`],
//! which keeps ordinary identifiers readable and escapes everything else:
//!
//! * ASCII letters, digits, `-`, `_` and `.` are written unchanged, so
//!   `tenant-42` stays `tenant-42` and keys match what other services write;
//! * every other byte of the UTF-8 text, `%` included, is written as `%XX`
//!   (upper-case hex), so a value can never contain `:`, `*`, `{`, `}`, spaces or
//!   anything else with a meaning in a key;
//! * `None` is written as `~`, a character no encoded text or number contains.
//!
//! Because an encoded value only ever holds `[A-Za-z0-9._%~-]`, the literal text
//! between two placeholders (which the macros require to contain a character outside
//! that set, such as `:`) marks exactly where one value ends and the next begins:
//! distinct argument tuples always give distinct keys.
//!
//! ```
//! use cacheward::key::{encode, KeyPart};
//!
//! assert_eq!(encode("tenant-42"), "tenant-42");
//! assert_eq!(encode("acme:eu"), "acme%3Aeu");
//! assert_eq!(encode(&Some(7_u64)), "7");
//! assert_eq!(encode(&None::<&str>), "~");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;

#[path = "alphabet.rs"]
mod alphabet;

/// A value that can stand in a key template's placeholder.
///
/// Implemented for text (`str`, `String`, `Cow<str>`, `char`), integers, `bool`,
/// `Option<T>` and references and smart pointers to any of them. Implement it for
/// your own id types by delegating to one of these, which keeps the encoding
/// injective:
///
/// ```
/// use cacheward::KeyPart;
///
/// struct TenantId(String);
///
/// impl KeyPart for TenantId {
///     fn write_key_part(&self, out: &mut String) {
///         self.0.write_key_part(out)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written into a cache key: it does not implement `cacheward::KeyPart`",
    label = "a key template placeholder takes this value",
    note = "`KeyPart` is implemented for `str`, `String`, `Cow<str>`, `char`, integers, `bool`, `NonZero*`, `Option<T>` and references and smart pointers to them",
    note = "for an id type of your own, implement `cacheward::KeyPart` by delegating to its inner value, or name one of its fields in the template: `<param.field>`"
)]
pub trait KeyPart {
    /// Appends this value's encoding to `out`. See the [module docs](self) for the rules.
    fn write_key_part(&self, out: &mut String);
}

/// Returns the encoding of one value, as it appears in a key.
pub fn encode<P: KeyPart + ?Sized>(part: &P) -> String {
    let mut out = String::new();
    part.write_key_part(&mut out);
    out
}

use alphabet::is_plain_byte as is_plain;

/// Appends `text` to `out`, escaping every byte outside `[A-Za-z0-9._-]` as `%XX`.
pub fn write_escaped(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    // Fast path: ordinary ids are copied in one go.
    if bytes.iter().all(|&b| is_plain(b)) {
        out.push_str(text);
        return;
    }
    out.reserve(text.len() + 8);
    for &b in bytes {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
}

/// The characters an encoded value may contain. Literal text between two placeholders
/// must contain at least one character outside this set for keys to stay injective.
pub fn is_encoded_char(c: char) -> bool {
    alphabet::is_encoded_char(c)
}

/// The name a type writes into a key where a template names a type parameter of a
/// generic trait: with `#[cached_store(key = "app:item:<T>:<id>")] trait Repo<T>`,
/// `CachingRepo<S>` for a `Repo<User>` reads `app:item:user:7` and one for a
/// `Repo<Order>` reads `app:item:order:7`, so instantiations never share entries.
///
/// Give each value type its own name; it is escaped like any text value.
///
/// ```
/// use cacheward::KeyName;
///
/// struct User;
///
/// impl KeyName for User {
///     const KEY_NAME: &'static str = "user";
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no name for cache keys: it does not implement `cacheward::KeyName`",
    label = "a key template names this type parameter",
    note = "a generic trait's key names its type parameter (`<T>`) so that two instantiations never share entries; give `{Self}` a name: `impl cacheward::KeyName for {Self} {{ const KEY_NAME: &'static str = \"...\"; }}`"
)]
pub trait KeyName {
    /// The text written for the type, e.g. `"user"`.
    const KEY_NAME: &'static str;
}

macro_rules! key_names {
    ($($t:ty => $name:literal)*) => {$(
        impl KeyName for $t {
            const KEY_NAME: &'static str = $name;
        }
    )*};
}
key_names!(
    String => "string" bool => "bool" char => "char"
    u8 => "u8" u16 => "u16" u32 => "u32" u64 => "u64" u128 => "u128" usize => "usize"
    i8 => "i8" i16 => "i16" i32 => "i32" i64 => "i64" i128 => "i128" isize => "isize"
    f32 => "f32" f64 => "f64"
);

impl KeyPart for str {
    fn write_key_part(&self, out: &mut String) {
        write_escaped(self, out);
    }
}

impl KeyPart for String {
    fn write_key_part(&self, out: &mut String) {
        write_escaped(self, out);
    }
}

impl KeyPart for Cow<'_, str> {
    fn write_key_part(&self, out: &mut String) {
        write_escaped(self, out);
    }
}

impl KeyPart for char {
    fn write_key_part(&self, out: &mut String) {
        let mut buf = [0u8; 4];
        write_escaped(self.encode_utf8(&mut buf), out);
    }
}

impl KeyPart for bool {
    fn write_key_part(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! integer_key_parts {
    ($($t:ty)*) => {$(
        impl KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut String) {
                // Writing to a String cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
integer_key_parts!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

macro_rules! nonzero_key_parts {
    ($($t:ty)*) => {$(
        impl KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut String) {
                self.get().write_key_part(out);
            }
        }
    )*};
}
nonzero_key_parts!(
    std::num::NonZeroU8 std::num::NonZeroU16 std::num::NonZeroU32 std::num::NonZeroU64
    std::num::NonZeroU128 std::num::NonZeroUsize std::num::NonZeroI8 std::num::NonZeroI16
    std::num::NonZeroI32 std::num::NonZeroI64 std::num::NonZeroI128 std::num::NonZeroIsize
);

/// `None` is written as `~`; `Some(v)` as `v`'s encoding, with one more `~` in front
/// when that encoding itself starts with `~` (so `Some(None)` differs from `None`).
impl<T: KeyPart> KeyPart for Option<T> {
    fn write_key_part(&self, out: &mut String) {
        match self {
            None => out.push('~'),
            Some(value) => {
                let start = out.len();
                value.write_key_part(out);
                if out[start..].starts_with('~') {
                    out.insert(start, '~');
                }
            }
        }
    }
}

macro_rules! deref_key_parts {
    ($($t:ty)*) => {$(
        impl<T: KeyPart + ?Sized> KeyPart for $t {
            #[inline]
            fn write_key_part(&self, out: &mut String) {
                (**self).write_key_part(out)
            }
        }
    )*};
}
deref_key_parts!(&T &mut T Box<T> Arc<T> Rc<T>);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_plain_byte_table_is_the_documented_set() {
        for b in 0..=u8::MAX {
            let documented = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
            assert_eq!(is_plain(b), documented, "byte {b:#04x}");
        }
    }

    #[test]
    fn ordinary_ids_are_unchanged() {
        for id in ["tenant-42", "acme_corp", "v1.2.3", "ABCxyz019", ""] {
            assert_eq!(encode(id), id);
        }
        assert_eq!(encode(&42_u64), "42");
        assert_eq!(encode(&-7_i32), "-7");
        assert_eq!(encode(&true), "true");
    }

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(encode("a:b"), "a%3Ab");
        assert_eq!(encode("*"), "%2A");
        assert_eq!(encode("{x}"), "%7Bx%7D");
        assert_eq!(encode("100%"), "100%25");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode("~"), "%7E");
        assert_eq!(encode(&'/'), "%2F");
    }

    #[test]
    fn options_are_distinct_from_their_contents() {
        assert_eq!(encode(&None::<String>), "~");
        assert_eq!(encode(&Some("")), "");
        assert_eq!(encode(&Some(None::<u8>)), "~~");
        assert_eq!(encode(&Some(Some(None::<u8>))), "~~~");
        assert_ne!(encode(&Some("~")), encode(&None::<&str>));
    }

    #[test]
    fn the_alphabet_file_is_shared_with_the_macros() {
        assert_eq!(
            include_str!("alphabet.rs"),
            include_str!("../../macros/src/alphabet.rs"),
            "runtime/src/alphabet.rs must be a link to macros/src/alphabet.rs"
        );
    }

    #[test]
    fn every_encoded_char_is_in_the_encoded_set() {
        let s = encode("a:b*c?{d}%e\\ f\n✓~");
        assert!(s.chars().all(is_encoded_char), "{s}");
        assert!(!is_encoded_char(':'));
        assert!(!is_encoded_char('{'));
    }

    fn nasty_string() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just(":".to_owned()),
                Just("*".to_owned()),
                Just("?".to_owned()),
                Just("[".to_owned()),
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("%".to_owned()),
                Just("\\".to_owned()),
                Just(" ".to_owned()),
                Just("\n".to_owned()),
                Just("~".to_owned()),
                Just("é".to_owned()),
                Just("日本".to_owned()),
                Just("%3A".to_owned()),
                "[a-z0-9._-]{0,3}",
            ],
            0..6,
        )
        .prop_map(|parts| parts.concat())
    }

    /// The key for a two-placeholder template `t:<a>:<b>` with an optional third.
    fn key(a: &str, b: &str, c: Option<&str>) -> String {
        let mut out = String::from("t:");
        a.write_key_part(&mut out);
        out.push(':');
        b.write_key_part(&mut out);
        out.push(':');
        c.write_key_part(&mut out);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn distinct_tuples_give_distinct_keys(
            a1 in nasty_string(), b1 in nasty_string(), c1 in proptest::option::of(nasty_string()),
            a2 in nasty_string(), b2 in nasty_string(), c2 in proptest::option::of(nasty_string()),
        ) {
            let k1 = key(&a1, &b1, c1.as_deref());
            let k2 = key(&a2, &b2, c2.as_deref());
            prop_assert_eq!(k1 == k2, (a1, b1, c1) == (a2, b2, c2));
        }

        #[test]
        fn encoding_is_reversible(s in nasty_string()) {
            let encoded = encode(s.as_str());
            prop_assert!(encoded.chars().all(is_encoded_char));
            prop_assert_eq!(percent_decode(&encoded), s);
        }
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}
