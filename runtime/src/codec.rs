//! How values are stored.
//!
//! Values are serde_json, so an entry is readable in `redis-cli` and by services
//! in other languages that share the keys. With the `compression` feature, a value whose JSON is larger
//! than the threshold (1 KB by default) is stored LZ4-compressed behind a 4-byte
//! marker, `\0LZ4`, followed by the uncompressed length (u32, little endian) and the
//! LZ4 block. No JSON text starts with a NUL byte, so plain and compressed entries
//! coexist under one cache and each is recognised whatever the current setting:
//! turning compression on or off never makes existing entries unreadable (without the
//! feature compiled in, compressed entries are misses, but they are not deleted).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The prefix of a compressed entry.
pub(crate) const COMPRESSED_MARKER: &[u8; 4] = b"\0LZ4";

/// The default size above which values are compressed (with the `compression` feature).
pub const DEFAULT_COMPRESS_ABOVE: usize = 1024;

/// The largest value the decoder will inflate a compressed entry to (64 MiB): a corrupt
/// or hostile length field must not make the process allocate gigabytes.
#[cfg(feature = "compression")]
const MAX_DECOMPRESSED: usize = 64 << 20;

/// Why a stored value could not be turned back into a `T`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("not valid JSON for the expected type: {0}")]
    Json(#[from] serde_json::Error),
    #[cfg_attr(not(feature = "compression"), allow(dead_code))]
    #[error("corrupt compressed entry: {0}")]
    Corrupt(&'static str),
    #[cfg_attr(feature = "compression", allow(dead_code))]
    #[error("compressed entry, but the `compression` feature is not enabled")]
    CompressionDisabled,
}

impl DecodeError {
    /// Whether the entry should be deleted (garbage) or left for a reader that can
    /// decode it (a compressed entry read by a build without compression).
    pub(crate) fn is_garbage(&self) -> bool {
        !matches!(self, DecodeError::CompressionDisabled)
    }
}

/// Encodes a value: JSON, compressed when `compress_above` is `Some(n)` and the JSON is
/// longer than `n` bytes (and compression actually makes it smaller).
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    compress_above: Option<usize>,
) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(value)?;
    match compress_above {
        #[cfg(feature = "compression")]
        Some(n) if json.len() > n => Ok(compress(json)),
        _ => Ok(json),
    }
}

#[cfg(feature = "compression")]
fn compress(json: Vec<u8>) -> Vec<u8> {
    let Ok(len) = u32::try_from(json.len()) else {
        return json;
    };
    let block = lz4_flex::block::compress(&json);
    if block.len() + 8 >= json.len() {
        return json;
    }
    let mut out = Vec::with_capacity(block.len() + 8);
    out.extend_from_slice(COMPRESSED_MARKER);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&block);
    out
}

/// Decodes a stored value, plain or compressed.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.first() == Some(&0) {
        return decode_marked(bytes);
    }
    Ok(serde_json::from_slice(bytes)?)
}

#[cold]
fn decode_marked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let Some(rest) = bytes.strip_prefix(COMPRESSED_MARKER.as_slice()) else {
        // Not our marker: it cannot be JSON either; let serde_json say why.
        return Ok(serde_json::from_slice(bytes)?);
    };
    #[cfg(feature = "compression")]
    {
        let (len, block) = rest
            .split_first_chunk::<4>()
            .ok_or(DecodeError::Corrupt("truncated header"))?;
        let len = u32::from_le_bytes(*len) as usize;
        // LZ4 cannot expand by more than 255x; anything claiming more is corrupt.
        if len > MAX_DECOMPRESSED || len > block.len().saturating_mul(255).saturating_add(16) {
            return Err(DecodeError::Corrupt("implausible length"));
        }
        let json = lz4_flex::block::decompress(block, len)
            .map_err(|_| DecodeError::Corrupt("invalid LZ4 block"))?;
        Ok(serde_json::from_slice(&json)?)
    }
    #[cfg(not(feature = "compression"))]
    {
        let _ = rest;
        Err(DecodeError::CompressionDisabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        id: u64,
        body: String,
    }

    fn big() -> Doc {
        Doc {
            id: 7,
            body: "lorem ipsum dolor sit amet ".repeat(200),
        }
    }

    #[test]
    fn plain_json_round_trip() {
        let bytes = encode(&big(), None).unwrap();
        assert_eq!(bytes[0], b'{');
        assert_eq!(decode::<Doc>(&bytes).unwrap(), big());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b"not json"[..],
            b"",
            b"\0",
            b"\0LZ4",
            b"\0LZ4\xff\xff\xff\xff",
            b"\0LZ4\x05\0\0\0zz",
        ] {
            assert!(decode::<Doc>(junk).is_err(), "{junk:?}");
        }
        assert!(decode::<Doc>(br#"{"id":"x"}"#).is_err());
    }

    #[cfg(feature = "compression")]
    #[test]
    fn large_values_are_compressed_and_both_forms_decode() {
        let compressed = encode(&big(), Some(DEFAULT_COMPRESS_ABOVE)).unwrap();
        assert!(compressed.starts_with(COMPRESSED_MARKER));
        assert!(compressed.len() < serde_json::to_vec(&big()).unwrap().len() / 4);
        assert_eq!(decode::<Doc>(&compressed).unwrap(), big());
        // Small values stay plain even with compression on.
        let small = Doc {
            id: 1,
            body: "x".into(),
        };
        let plain = encode(&small, Some(DEFAULT_COMPRESS_ABOVE)).unwrap();
        assert_eq!(plain[0], b'{');
        assert_eq!(decode::<Doc>(&plain).unwrap(), small);
    }

    #[cfg(feature = "compression")]
    #[test]
    fn a_lying_length_is_rejected_without_allocating_it() {
        let mut bytes = encode(&big(), Some(16)).unwrap();
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Doc>(&bytes),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[cfg(not(feature = "compression"))]
    #[test]
    fn compressed_entries_are_left_alone_without_the_feature() {
        let err = decode::<Doc>(b"\0LZ4\x05\0\0\0abc").unwrap_err();
        assert!(!err.is_garbage());
    }
}
