// The alphabet of encoded placeholder values. This one file is compiled into both
// `cacheward-macros`, which requires a character outside the alphabet between two
// placeholders of a key template, and `cacheward`, whose `KeyPart` encoding writes
// only characters of the alphabet: `runtime/src/alphabet.rs` is a symbolic link to
// `macros/src/alphabet.rs`, so the two cannot drift apart.

/// Whether the text encoding writes byte `b` unchanged: ASCII letters, digits, `-`,
/// `_` and `.`. Every other byte is escaped as `%XX`.
#[inline]
pub(crate) fn is_plain_byte(b: u8) -> bool {
    PLAIN[usize::from(b)]
}

/// [`is_plain_byte`] as a table: one load per byte when a key is built (a key's values
/// are escaped on every read, near hits included).
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        i += 1;
    }
    table
};

/// Whether an encoded value may contain `c`: the plain bytes, `%` (escapes) and `~`
/// (written for `None`).
#[inline]
pub(crate) fn is_encoded_char(c: char) -> bool {
    u8::try_from(c).is_ok_and(|b| b.is_ascii() && (is_plain_byte(b) || b == b'%' || b == b'~'))
}
