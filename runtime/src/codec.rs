//! How values are stored.
//!
//! Values are serde_json by default, so an entry is readable in `redis-cli` and by
//! services in other languages that share the keys. Two opt-in encodings sit behind a
//! 4-byte format marker that starts with a NUL byte, which no JSON text starts with,
//! so every form coexists under one cache and each is recognised whatever the current
//! setting: changing the setting, or a rolling deploy that mixes instances with
//! different settings, never makes existing entries unreadable.
//!
//! - [`Codec::MessagePack`] (the `msgpack` feature): `\0MPK` followed by MessagePack
//!   with field names (rmp-serde's `to_vec_named`), so that, as with JSON, a field
//!   added with `#[serde(default)]` or removed reads old entries. Measured on the
//!   benchmarks' 350-byte policy (`cargo bench -p cacheward-benches --bench micro
//!   policy`): 306 bytes, decoded in two thirds of JSON's time (631 vs 933 ns).
//!   Positional formats were faster (MessagePack as arrays 531 ns, postcard 410 ns)
//!   but read a reordered or removed field as its neighbour, or fail on an added one:
//!   wrong for entries that instances of two versions share during a deploy.
//! - Compression (the `compression` feature): a value whose encoding is larger than
//!   the threshold (1 KB by default) is stored LZ4-compressed: `\0LZ4`, the
//!   uncompressed length (u32, little endian) and the LZ4 block of the encoding (JSON,
//!   or a `\0MPK` entry).
//!
//! A build without a feature reads an entry written with it as a miss, and leaves it
//! in place for the builds that can read it (it is not garbage).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The prefix of a compressed entry.
pub(crate) const COMPRESSED_MARKER: &[u8; 4] = b"\0LZ4";

/// The prefix of a MessagePack entry.
pub(crate) const MSGPACK_MARKER: &[u8; 4] = b"\0MPK";

/// The default size above which values are compressed (with the `compression` feature).
pub const DEFAULT_COMPRESS_ABOVE: usize = 1024;

/// The largest value the decoder will inflate a compressed entry to (64 MiB): a corrupt
/// or hostile length field must not make the process allocate gigabytes.
#[cfg(feature = "compression")]
const MAX_DECOMPRESSED: usize = 64 << 20;

/// How a cache encodes the values it writes. Every cache reads every encoding (those
/// its build has the feature for), so this can change, or differ between instances
/// during a rolling deploy, without making entries unreadable.
///
/// Set with [`CacheBuilder::codec`](crate::CacheBuilder::codec) or `CACHE_CODEC`
/// (`json`, `msgpack`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// serde_json: readable in `redis-cli` and by any language (the default).
    #[default]
    Json,
    /// MessagePack with field names, behind the marker `\0MPK` (the `msgpack`
    /// feature): smaller entries and cheaper decoding (about two thirds of JSON's
    /// time), at the cost of `redis-cli` readability and of other languages' JSON
    /// readers. Upstash caches write JSON whatever this says (its REST
    /// API carries strings).
    #[cfg(feature = "msgpack")]
    MessagePack,
}

impl Codec {
    /// The name `CACHE_CODEC` takes: `json` or `msgpack`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Json => "json",
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => "msgpack",
        }
    }
}

/// How a cache writes values: the codec, and when it compresses. The default is plain,
/// uncompressed JSON: what a store that carries strings (Upstash's REST API) can hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Encoding {
    pub(crate) codec: Codec,
    /// Compress encodings longer than this (with the `compression` feature).
    pub(crate) compress_above: Option<usize>,
}

impl Encoding {
    /// JSON, compressed above the default threshold when the feature is built in.
    pub(crate) fn default_for_build() -> Self {
        Encoding {
            codec: Codec::Json,
            compress_above: cfg!(feature = "compression").then_some(DEFAULT_COMPRESS_ABOVE),
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    #[error("cannot be written as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[cfg(feature = "msgpack")]
    #[error("cannot be written as MessagePack: {0}")]
    MessagePack(#[from] rmp_serde::encode::Error),
}

/// Why a stored value could not be turned back into a `T`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("not valid JSON for the expected type: {0}")]
    Json(#[from] serde_json::Error),
    #[cfg(feature = "msgpack")]
    #[error("not valid MessagePack for the expected type: {0}")]
    MessagePack(#[from] rmp_serde::decode::Error),
    #[cfg_attr(not(feature = "compression"), allow(dead_code))]
    #[error("corrupt compressed entry: {0}")]
    Corrupt(&'static str),
    #[cfg_attr(
        all(feature = "compression", feature = "msgpack"),
        allow(dead_code, reason = "built with every encoding")
    )]
    #[error("a {0} entry, but the `{0}` feature is not enabled in this build")]
    FeatureDisabled(&'static str),
}

impl DecodeError {
    /// Whether the entry should be deleted (garbage) or left for a reader that can
    /// decode it (an entry written by a build with a feature this one lacks).
    pub(crate) fn is_garbage(&self) -> bool {
        !matches!(self, DecodeError::FeatureDisabled(_))
    }
}

/// Encodes a value as `encoding` says: JSON or MessagePack, compressed when
/// `compress_above` is `Some(n)` and the encoding is longer than `n` bytes (and
/// compression actually makes it smaller).
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    encoding: Encoding,
) -> Result<Vec<u8>, EncodeError> {
    let bytes = match encoding.codec {
        Codec::Json => serde_json::to_vec(value)?,
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => {
            let mut out = Vec::with_capacity(128);
            out.extend_from_slice(MSGPACK_MARKER);
            value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
            out
        }
    };
    match encoding.compress_above {
        #[cfg(feature = "compression")]
        Some(n) if bytes.len() > n => Ok(compress(bytes)),
        _ => Ok(bytes),
    }
}

#[cfg(feature = "compression")]
fn compress(encoded: Vec<u8>) -> Vec<u8> {
    let Ok(len) = u32::try_from(encoded.len()) else {
        return encoded;
    };
    let block = lz4_flex::block::compress(&encoded);
    if block.len() + 8 >= encoded.len() {
        return encoded;
    }
    let mut out = Vec::with_capacity(block.len() + 8);
    out.extend_from_slice(COMPRESSED_MARKER);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&block);
    out
}

/// Decodes a stored value, whatever its form.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.first() == Some(&0) {
        return decode_marked(bytes);
    }
    Ok(serde_json::from_slice(bytes)?)
}

/// An entry behind a marker: MessagePack, or compressed (around JSON or MessagePack).
fn decode_marked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if let Some(rest) = bytes.strip_prefix(MSGPACK_MARKER.as_slice()) {
        return decode_msgpack(rest);
    }
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
        let inner = lz4_flex::block::decompress(block, len)
            .map_err(|_| DecodeError::Corrupt("invalid LZ4 block"))?;
        // One level only: a compressed entry holds JSON or MessagePack, never another
        // compressed entry.
        match inner.strip_prefix(MSGPACK_MARKER.as_slice()) {
            Some(msgpack) => decode_msgpack(msgpack),
            None => Ok(serde_json::from_slice(&inner)?),
        }
    }
    #[cfg(not(feature = "compression"))]
    {
        let _ = rest;
        Err(DecodeError::FeatureDisabled("compression"))
    }
}

fn decode_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    #[cfg(feature = "msgpack")]
    {
        Ok(rmp_serde::from_slice(bytes)?)
    }
    #[cfg(not(feature = "msgpack"))]
    {
        let _ = bytes;
        Err(DecodeError::FeatureDisabled("msgpack"))
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

    #[cfg(feature = "compression")]
    fn compressed_json(above: usize) -> Encoding {
        Encoding {
            codec: Codec::Json,
            compress_above: Some(above),
        }
    }

    fn big() -> Doc {
        Doc {
            id: 7,
            body: "lorem ipsum dolor sit amet ".repeat(200),
        }
    }

    #[test]
    fn plain_json_round_trip() {
        let bytes = encode(&big(), Encoding::default()).unwrap();
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
        let compressed = encode(&big(), compressed_json(DEFAULT_COMPRESS_ABOVE)).unwrap();
        assert!(compressed.starts_with(COMPRESSED_MARKER));
        assert!(compressed.len() < serde_json::to_vec(&big()).unwrap().len() / 4);
        assert_eq!(decode::<Doc>(&compressed).unwrap(), big());
        // Small values stay plain even with compression on.
        let small = Doc {
            id: 1,
            body: "x".into(),
        };
        let plain = encode(&small, compressed_json(DEFAULT_COMPRESS_ABOVE)).unwrap();
        assert_eq!(plain[0], b'{');
        assert_eq!(decode::<Doc>(&plain).unwrap(), small);
    }

    #[cfg(feature = "compression")]
    #[test]
    fn a_lying_length_is_rejected_without_allocating_it() {
        let mut bytes = encode(&big(), compressed_json(16)).unwrap();
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

    #[cfg(feature = "msgpack")]
    fn msgpack(compress_above: Option<usize>) -> Encoding {
        Encoding {
            codec: Codec::MessagePack,
            compress_above,
        }
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_round_trips_behind_its_marker_and_json_entries_still_read() {
        let bytes = encode(&big(), msgpack(None)).unwrap();
        assert!(bytes.starts_with(MSGPACK_MARKER));
        assert!(bytes.len() < serde_json::to_vec(&big()).unwrap().len());
        assert_eq!(decode::<Doc>(&bytes).unwrap(), big());
        // What an instance still on JSON wrote, read by one on MessagePack, and back.
        let json = encode(&big(), Encoding::default()).unwrap();
        assert_eq!(decode::<Doc>(&json).unwrap(), big());
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_keeps_field_names_so_an_added_defaulted_field_reads_old_entries() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct DocV2 {
            id: u64,
            body: String,
            #[serde(default)]
            tags: Vec<String>,
        }
        let old = encode(&big(), msgpack(None)).unwrap();
        let read: DocV2 = decode(&old).unwrap();
        assert_eq!(
            (read.id, read.body.len(), read.tags.len()),
            (7, big().body.len(), 0)
        );
    }

    #[cfg(all(feature = "msgpack", feature = "compression"))]
    #[test]
    fn compressed_msgpack_round_trips() {
        let bytes = encode(&big(), msgpack(Some(16))).unwrap();
        assert!(bytes.starts_with(COMPRESSED_MARKER));
        assert_eq!(decode::<Doc>(&bytes).unwrap(), big());
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn corrupt_msgpack_is_garbage_not_a_panic() {
        for junk in [&b"\0MPK"[..], b"\0MPK\xc1", b"\0MPK\x81\xa2id\xa1x"] {
            let err = decode::<Doc>(junk).unwrap_err();
            assert!(err.is_garbage(), "{junk:?}");
        }
    }

    #[cfg(not(feature = "msgpack"))]
    #[test]
    fn msgpack_entries_are_left_alone_without_the_feature() {
        let err = decode::<Doc>(b"\0MPK\x81\xa2id\x07").unwrap_err();
        assert!(!err.is_garbage());
    }
}
