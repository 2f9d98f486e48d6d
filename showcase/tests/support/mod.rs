//! Test support: the service running on a loopback port, a small HTTP client, a
//! private Postgres server, and the scenarios both databases run.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

pub mod postgres;
pub mod scenarios;

use std::net::SocketAddr;
use std::time::Duration;

use cacheward::Cache;
use cacheward_showcase::{App, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The service, serving on 127.0.0.1 in this process (so a test can read its query
/// count), stopped when dropped.
pub struct Service {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state: the database (and its query count), the cache, the limiter.
    pub app: App,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Service {
    /// Starts the service on `database_url` with `cache` and a rate limit of
    /// `per_minute` requests per client.
    pub async fn start(database_url: &str, cache: Cache, per_minute: u64) -> Service {
        let config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            database_url: database_url.to_owned(),
            max_connections: 8,
            rate_limit_per_minute: per_minute,
        };
        let app = App::new(&config, cache)
            .await
            .unwrap_or_else(|e| panic!("the service did not start: {e}"));
        let listener = tokio::net::TcpListener::bind(config.addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Service {
            addr,
            app,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the service gracefully and waits for it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = self.task.take().unwrap().await.expect("the server task");
        result.expect("the server stopped cleanly");
    }

    /// Database queries the stores sent so far.
    pub fn queries(&self) -> u64 {
        self.app.db.queries()
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        call(self.addr, "GET", path, None).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &str) -> Reply {
        call(self.addr, "PUT", path, Some(body)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        call(self.addr, "POST", path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Reply {
        call(self.addr, "DELETE", path, None).await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics, showing the body, if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request on a new connection (`Connection: close`), read to the end.
pub async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Reply {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        std::io::Result::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 30 s"))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
        "this client does not decode chunked bodies"
    );
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The policy body of the API's example.
pub const POLICY: &str =
    r#"{"default_model": "gpt-4o", "allowed_models": ["gpt-4o"], "max_tokens_per_request": 8192}"#;

/// Another valid policy body.
pub const POLICY_V2: &str = r#"{"default_model": "o3", "allowed_models": ["gpt-4o", "o3"], "max_tokens_per_request": 4096}"#;
