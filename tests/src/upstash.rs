//! An HTTP front on 127.0.0.1 that speaks Upstash's REST protocol and forwards every
//! command to a real, private `redis-server`.
//!
//! No Upstash-compatible server can be installed from a package registry, and a mock
//! would only prove that the client agrees with itself. The front is the thin
//! translation layer the hosted service is, in front of a real Redis:
//!
//! * `POST /` with a JSON array `["SET","k","v"]` answers `200 {"result": …}`, or
//!   `400 {"error": "ERR …"}` when Redis refuses the command;
//! * `POST /pipeline` with an array of commands answers an array of `{"result"}` /
//!   `{"error"}` objects, in order, not atomic;
//! * `POST /multi-exec` has the same shape and runs the commands in `MULTI`/`EXEC`;
//! * `Authorization: Bearer <token>` is required: a missing or wrong token is
//!   `401 {"error": "Unauthorized"}`;
//! * with the request header `Upstash-Encoding: base64`, every string of a result is
//!   base64-encoded, recursively, except the status reply `OK`; numbers, nulls and
//!   errors are never encoded. Without it, strings are sent as UTF-8 text.
//!
//! Arguments may be JSON strings or numbers (the official client sends both). Replies
//! are Redis's RESP2 replies turned into JSON: nil is `null`, an integer a number, a
//! bulk or status string a string, an array an array.
//!
//! For failover tests the front can be [killed](UpstashFront::kill) (listener and
//! every open connection closed), [restarted](UpstashFront::restart) on the same port,
//! and [frozen](UpstashFront::freeze): requests are read and never answered until
//! [thawed](UpstashFront::thaw), like a stalled service behind a load balancer. It
//! can also [hold the first request of each new connection](UpstashFront::delay_new_connections),
//! as a slow handshake with a distant region does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use redis::aio::ConnectionLike as _;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::RedisServer;

/// A REST front owned by a test; it stops when dropped.
pub struct UpstashFront {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<tokio::task::JoinHandle<()>>,
    /// Serves https:// with this when set.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

#[derive(Debug)]
struct Shared {
    token: String,
    redis_url: String,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    frozen: watch::Sender<bool>,
    requests: AtomicU64,
    /// How long the first request of each new connection is held (a slow handshake).
    new_connection_delay: Mutex<std::time::Duration>,
    /// The name of every command received, in order (`EVALSHA`, `SCRIPT`, …).
    commands: Mutex<Vec<String>>,
}

impl std::fmt::Debug for UpstashFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstashFront")
            .field("url", &self.url())
            .field("running", &self.accept.is_some())
            .finish_non_exhaustive()
    }
}

impl UpstashFront {
    /// Starts a front on a free loopback port for `redis`, accepting `token`.
    /// Must be called inside a tokio runtime.
    pub async fn start(redis: &RedisServer, token: &str) -> UpstashFront {
        Self::start_with(redis, token, None).await
    }

    /// Like [`start`](Self::start), serving `https://` with the certificate chain
    /// `cert_pem` and its private key `key_pem` (PEM).
    pub async fn start_tls(
        redis: &RedisServer,
        token: &str,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> UpstashFront {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .expect("a PEM certificate chain");
        let key = PrivateKeyDer::from_pem_slice(key_pem).expect("a PEM private key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a usable certificate and key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::start_with(redis, token, Some(acceptor)).await
    }

    /// Like [`start`](Self::start), for code that is not async but runs inside a
    /// tokio runtime (the front's tasks are spawned on it): [`crate::Target::upstash`].
    pub fn start_in_current_runtime(redis: &RedisServer, token: &str) -> UpstashFront {
        Self::start_with_sync(redis, token, None)
    }

    async fn start_with(
        redis: &RedisServer,
        token: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> UpstashFront {
        Self::start_with_sync(redis, token, tls)
    }

    fn start_with_sync(
        redis: &RedisServer,
        token: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> UpstashFront {
        // As deep a backlog as tokio's `bind` gives: scenarios open many connections
        // at once, and a SYN dropped from a full queue is retried only after a second.
        // SO_REUSEADDR, as tokio's `bind` sets it, so that `restart` can listen on the
        // port again while the killed front's connections linger in TIME_WAIT.
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket for the front");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind the front's port");
        let listener = socket.listen(1024).expect("inside a tokio runtime");
        let addr = listener.local_addr().expect("front address");
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            redis_url: redis.url(),
            conn: tokio::sync::Mutex::new(None),
            frozen: watch::channel(false).0,
            requests: AtomicU64::new(0),
            new_connection_delay: Mutex::new(std::time::Duration::ZERO),
            commands: Mutex::new(Vec::new()),
        });
        let accept = Some(tokio::spawn(serve(listener, shared.clone(), tls.clone())));
        UpstashFront {
            addr,
            shared,
            accept,
            tls,
        }
    }

    /// The REST URL: `http://127.0.0.1:<port>`, or `https://` for a TLS front.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The token the front accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// How many HTTP requests were answered or are being answered.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The name of every command received so far, upper-cased, in order.
    pub fn commands(&self) -> Vec<String> {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A [`cacheward::CacheBuilder`] on this front with a [`crate::TEST_DEADLINE`]
    /// deadline.
    pub fn builder(&self) -> cacheward::CacheBuilder {
        cacheward::Cache::builder()
            .upstash(self.url(), self.token())
            .deadline(crate::TEST_DEADLINE)
    }

    /// A [`cacheward::Cache`] on this front with a [`crate::TEST_DEADLINE`] deadline.
    pub fn cache(&self) -> cacheward::Cache {
        self.builder().build().expect("the front's URL is valid")
    }

    /// Closes the listener and every open connection: requests fail at once.
    pub fn kill(&mut self) {
        self.thaw();
        if let Some(task) = self.accept.take() {
            task.abort();
        }
    }

    /// Listens again on the same port (after [`kill`](Self::kill)).
    pub async fn restart(&mut self) {
        self.kill();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("could not listen on {} again: {e}", self.addr)
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        self.accept = Some(tokio::spawn(serve(
            listener,
            self.shared.clone(),
            self.tls.clone(),
        )));
    }

    /// Holds the first request of every new connection for `delay` before answering
    /// it, as a slow TCP + TLS handshake to a distant region would; later requests on
    /// the same connection are answered at once. (Harsher than a slow handshake: a
    /// client whose pooled connection frees up while it is still connecting can use
    /// that one instead, but a request already sent on the new one must wait.)
    pub fn delay_new_connections(&self, delay: std::time::Duration) {
        *self
            .shared
            .new_connection_delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = delay;
    }

    /// Stops answering: requests are read and held until [`thaw`](Self::thaw).
    pub fn freeze(&self) {
        self.shared.frozen.send_replace(true);
    }

    /// Answers again, including the requests held while frozen.
    pub fn thaw(&self) {
        self.shared.frozen.send_replace(false);
    }
}

impl Drop for UpstashFront {
    fn drop(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
        }
    }
}

/// Accepts connections until aborted; aborting drops the set, which closes every
/// connection the front has open.
async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<tokio_rustls::TlsAcceptor>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(TokioIo::new(stream), shared).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(TokioIo::new(stream), shared).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes.
async fn serve_connection<I>(io: I, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let fresh = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let service = hyper::service::service_fn(move |req| {
        let (shared, fresh) = (shared.clone(), fresh.clone());
        async move {
            if fresh.swap(false, Ordering::Relaxed) {
                let delay = *shared
                    .new_connection_delay
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tokio::time::sleep(delay).await;
            }
            handle(req, shared).await
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

fn reply(status: StatusCode, body: &Json) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(shared.token.as_str());
    let base64 = req
        .headers()
        .get("upstash-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let is_post = req.method() == hyper::Method::POST;
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, &json!({"error": "body"}))),
    };
    // Frozen: hold the request until thawed (or the connection is closed).
    let mut frozen = shared.frozen.subscribe();
    let _ = frozen.wait_for(|f| !f).await;
    if !authorized {
        return Ok(reply(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "Unauthorized"}),
        ));
    }
    if !is_post {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "only POST is served"}),
        ));
    }
    let parsed: Json = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("ERR failed to parse the command: {e}")}),
            ));
        }
    };
    let answer = match path.as_str() {
        "" => single(&shared, &parsed, base64).await,
        "/pipeline" => batch(&shared, &parsed, base64, false).await,
        "/multi-exec" => batch(&shared, &parsed, base64, true).await,
        other => Err((
            StatusCode::NOT_FOUND,
            format!("ERR unknown endpoint {other}"),
        )),
    };
    Ok(match answer {
        Ok(body) => reply(StatusCode::OK, &body),
        Err((status, error)) => reply(status, &json!({ "error": error })),
    })
}

type Answer = Result<Json, (StatusCode, String)>;

/// A JSON command (`["SET","k",1]`) as a redis-rs command.
fn command(shared: &Shared, json: &Json) -> Result<redis::Cmd, (StatusCode, String)> {
    let bad = |why: &str| (StatusCode::BAD_REQUEST, format!("ERR {why}"));
    let Json::Array(items) = json else {
        return Err(bad("a command is a JSON array"));
    };
    let mut args = Vec::with_capacity(items.len());
    for item in items {
        args.push(match item {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            _ => return Err(bad("command arguments are strings or numbers")),
        });
    }
    let Some(name) = args.first() else {
        return Err(bad("empty command"));
    };
    shared
        .commands
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(name.to_ascii_uppercase());
    let mut cmd = redis::cmd(name);
    for a in &args[1..] {
        cmd.arg(a.as_bytes());
    }
    Ok(cmd)
}

/// The connection to Redis, made on first use and again after a failure.
async fn connection(shared: &Shared) -> Result<redis::aio::MultiplexedConnection, String> {
    let mut slot = shared.conn.lock().await;
    if let Some(c) = &*slot {
        return Ok(c.clone());
    }
    let client = redis::Client::open(shared.redis_url.as_str()).map_err(|e| e.to_string())?;
    let c = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    *slot = Some(c.clone());
    Ok(c)
}

fn unavailable(shared: &Shared, e: &redis::RedisError) -> (StatusCode, String) {
    if let Ok(mut slot) = shared.conn.try_lock() {
        *slot = None;
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("redis unavailable: {e}"),
    )
}

async fn single(shared: &Shared, json: &Json, base64: bool) -> Answer {
    let cmd = command(shared, json)?;
    let mut conn = connection(shared)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    match conn.req_packed_command(&cmd).await {
        Ok(redis::Value::ServerError(e)) => Err((StatusCode::BAD_REQUEST, error_text(&e))),
        Ok(value) => Ok(json!({ "result": to_json(value, base64) })),
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() => {
            Err(unavailable(shared, &e))
        }
        Err(e) => Err((StatusCode::BAD_REQUEST, redis_error_text(&e))),
    }
}

async fn batch(shared: &Shared, json: &Json, base64: bool, atomic: bool) -> Answer {
    let Json::Array(commands) = json else {
        return Err((
            StatusCode::BAD_REQUEST,
            "ERR a pipeline is a JSON array of commands".to_owned(),
        ));
    };
    let mut pipe = redis::pipe();
    if atomic {
        pipe.atomic();
    }
    for c in commands {
        pipe.add_command(command(shared, c)?);
    }
    let mut conn = connection(shared)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    let n = commands.len();
    let replies = if atomic {
        conn.req_packed_commands(&pipe, n + 1, 1).await
    } else {
        conn.req_packed_commands(&pipe, 0, n).await
    };
    let mut replies = match replies {
        Ok(r) => r,
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() => {
            return Err(unavailable(shared, &e));
        }
        Err(e) => return Err((StatusCode::BAD_REQUEST, redis_error_text(&e))),
    };
    if atomic {
        replies = match replies.pop() {
            Some(redis::Value::Array(items)) => items,
            Some(redis::Value::ServerError(e)) => {
                return Err((StatusCode::BAD_REQUEST, error_text(&e)));
            }
            other => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("ERR transaction aborted: {other:?}"),
                ));
            }
        };
    }
    Ok(Json::Array(
        replies
            .into_iter()
            .map(|v| match v {
                redis::Value::ServerError(e) => json!({ "error": error_text(&e) }),
                v => json!({ "result": to_json(v, base64) }),
            })
            .collect(),
    ))
}

fn error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_owned(),
    }
}

fn redis_error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => format!("ERR {e}"),
    }
}

/// A RESP2 reply as JSON, strings base64-encoded when asked (except the status `OK`).
fn to_json(value: redis::Value, base64: bool) -> Json {
    use redis::Value as V;
    let text = |bytes: Vec<u8>| {
        if base64 {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            Json::String(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    match value {
        V::Nil => Json::Null,
        V::Int(n) => json!(n),
        V::Okay => Json::String("OK".to_owned()),
        V::SimpleString(s) => text(s.into_bytes()),
        V::BulkString(b) => text(b),
        V::Array(items) | V::Set(items) => {
            Json::Array(items.into_iter().map(|v| to_json(v, base64)).collect())
        }
        V::Map(pairs) => Json::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [to_json(k, base64), to_json(v, base64)])
                .collect(),
        ),
        V::Double(d) => json!(d),
        V::Boolean(b) => json!(i64::from(b)),
        V::ServerError(e) => json!({ "error": error_text(&e) }),
        other => Json::String(format!("{other:?}")),
    }
}
