//! The harness itself: a server starts, answers, dies, comes back, freezes; a
//! cluster has three primaries with one replica each, every slot covered, and
//! everything gone after drop.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::{RedisCluster, RedisServer};

/// A server answers, stops answering once killed, answers again after a restart, and
/// not while frozen.
pub async fn server_starts_restarts_and_freezes() {
    let mut server = RedisServer::start();
    let mut conn = server.connection().await;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");

    server.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err());
    server.restart();
    let mut conn = server.connection().await;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");

    server.freeze();
    let frozen = tokio::time::timeout(
        Duration::from_millis(200),
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    assert!(frozen.is_err(), "a frozen server must not answer");
    server.thaw();
}

/// A fresh cluster: six nodes, three primaries with a replica each, all 16384 slots
/// covered, keys routed by the client, and no node left listening after drop.
pub async fn three_primaries_three_replicas_all_slots_and_a_clean_teardown() {
    let cluster = RedisCluster::start();
    let topology = cluster.topology();
    assert_eq!(topology.len(), 6);
    let primaries: Vec<_> = topology.iter().filter(|n| n.primary).collect();
    let replicas: Vec<_> = topology.iter().filter(|n| !n.primary).collect();
    assert_eq!(primaries.len(), 3);
    assert_eq!(replicas.len(), 3);
    let replicated: BTreeSet<&str> = replicas
        .iter()
        .filter_map(|r| r.primary_id.as_deref())
        .collect();
    assert_eq!(replicated.len(), 3, "each primary has its own replica");
    let covered: u32 = primaries
        .iter()
        .flat_map(|p| &p.slots)
        .map(|&(a, b)| u32::from(b - a) + 1)
        .sum();
    assert_eq!(covered, 16384);

    // Raw cluster connection: keys in all slots, routed by the client.
    let mut conn = cluster.connection().await;
    for i in 0..30 {
        let _: () = redis::cmd("SET")
            .arg(format!("harness:{i}"))
            .arg(i)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let v: i64 = redis::cmd("GET")
        .arg("harness:17")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, 17);

    let ports = cluster.ports();
    drop(conn);
    drop(cluster);
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "node {port} still listening after drop"
        );
    }
}
