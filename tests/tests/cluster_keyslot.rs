//! The runtime's slot computation agrees with the server's `CLUSTER KEYSLOT`.
//!
//! The runtime's `backend/slot.rs` is self-contained; it is compiled into this test
//! as is, so what is checked here is exactly the code the cluster backend runs.

#[allow(dead_code)]
#[path = "../../runtime/src/backend/slot.rs"]
mod slot;

use cacheward_tests::RedisCluster;

/// A small deterministic generator (xorshift64*), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Keys rich in the characters that matter for hash tags: `{`, `}`, empty tags,
/// nested and unbalanced braces, template-like keys, unicode and arbitrary bytes.
fn generate_keys(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet: &[&[u8]] = &[
        b"{",
        b"}",
        b"{",
        b"}",
        b":",
        b"a",
        b"b",
        b"z",
        b"0",
        b"7",
        b"-",
        b"*",
        b" ",
        b"copilot",
        b"tenant",
        b"policy",
        b"\\",
        "é".as_bytes(),
        "日本".as_bytes(),
        b"\x00",
        b"\xff",
    ];
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let key = match i % 4 {
            // Template-shaped: copilot:{<tenant>}:policy with varied tenants.
            0 => format!("copilot:{{t{}}}:policy", rng.next() % 1000).into_bytes(),
            // Arbitrary bytes.
            1 => (0..rng.below(24)).map(|_| rng.next() as u8).collect(),
            // Brace-heavy strings from the alphabet.
            _ => {
                let mut k = Vec::new();
                for _ in 0..rng.below(12) {
                    k.extend_from_slice(alphabet[rng.below(alphabet.len())]);
                }
                k
            }
        };
        keys.push(key);
    }
    keys
}

#[tokio::test]
async fn slots_agree_with_cluster_keyslot_on_10000_keys() {
    let cluster = RedisCluster::shared();
    let mut conn = cluster.node_connection(cluster.ports()[0]).await;
    let keys = generate_keys(10_000);

    let mut mismatches = Vec::new();
    for chunk in keys.chunks(1_000) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("CLUSTER").arg("KEYSLOT").arg(k);
        }
        let server: Vec<u16> = pipe.query_async(&mut conn).await.expect("CLUSTER KEYSLOT");
        assert_eq!(server.len(), chunk.len());
        for (k, s) in chunk.iter().zip(server) {
            let ours = slot::key_slot(k);
            if ours != s {
                mismatches.push((String::from_utf8_lossy(k).into_owned(), ours, s));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} keys disagree (key, ours, server): {:?}",
        mismatches.len(),
        keys.len(),
        &mismatches[..mismatches.len().min(10)]
    );

    // The generator exercised the interesting cases.
    let tagged = keys
        .iter()
        .filter(|k| slot::hash_tag(k).len() != k.len())
        .count();
    let empty_tag = keys
        .iter()
        .filter(|k| k.windows(2).any(|w| w == b"{}"))
        .count();
    assert!(tagged > 2_600, "only {tagged} keys had a hash tag");
    assert!(empty_tag > 50, "only {empty_tag} keys had an empty tag");
}
