//! Redis Cluster key slots: CRC16 (XMODEM) of the key's hash tag, modulo 16384.
//!
//! Exactly Redis' rule (`keyHashSlot` in cluster.c): if the key contains a `{`, and
//! a `}` somewhere after that first `{`, and at least one byte between them, only
//! those bytes are hashed. Otherwise the whole key is. So `copilot:{t1}:policy` and
//! `copilot:{t1}:limits` share a slot, `{}x` hashes whole, and `{{a}}` hashes `{a`.
//!
//! This file is self-contained (no `crate::` paths): the test suite includes it to
//! check it against `CLUSTER KEYSLOT` on a live cluster.

/// How many slots a Redis Cluster has.
pub(crate) const SLOTS: u16 = 16384;

/// The slot `key` belongs to.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS - 1)
}

/// The part of `key` that is hashed: the hash tag if there is a non-empty one,
/// otherwise the whole key.
pub(crate) fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
fn crc16(bytes: &[u8]) -> u16 {
    static TABLE: [u16; 256] = table();
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from(((crc >> 8) as u8) ^ b)]
    })
}

const fn table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_reference_vector() {
        // The check value from the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tags_follow_the_redis_rules() {
        assert_eq!(hash_tag(b"copilot:{t1}:policy"), b"t1");
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"no-tag"), b"no-tag");
        assert_eq!(hash_tag(b"open{only"), b"open{only");
        assert_eq!(hash_tag(b"close}only{"), b"close}only{");
        assert_eq!(
            key_slot(b"copilot:{t1}:policy"),
            key_slot(b"copilot:{t1}:limits")
        );
    }

    #[test]
    fn known_slots() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b""), 0);
    }
}
