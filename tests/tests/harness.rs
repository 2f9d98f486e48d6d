//! The harness itself: a server starts, answers, dies, comes back, freezes.

use cacheward_tests::RedisServer;
use std::time::Duration;

#[tokio::test]
async fn server_starts_restarts_and_freezes() {
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
