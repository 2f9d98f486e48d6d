//! An HTTP API behind a cacheward rate limiter: an axum middleware that answers
//! `429 Too Many Requests` with `Retry-After` and the IETF draft `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` headers.
//!
//! ```text
//! cargo run --example rate_limit_http                                   # no Redis: allow-all
//! CACHE_PROVIDER=memory cargo run --example rate_limit_http             # enforced in this process
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example rate_limit_http  # enforced across processes
//! ```
//!
//! The program starts the server on an ephemeral loopback port, sends it a few
//! requests, prints what came back, and exits 0, so CI can run it as a smoke test.
//! Without Redis every request passes (fail-open: rate limiting needs state shared
//! by all instances), unless the single-process memory cache is asked for.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cacheward::{Algorithm, Cache, Decision, RateLimiter};

/// Requests per client per window.
const LIMIT: u64 = 5;
const WINDOW: Duration = Duration::from_secs(10);
/// How many requests the program sends itself.
const REQUESTS: usize = 8;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // Pass-through without REDIS_URL, which makes the limiter allow everything.
    let cache = Cache::from_env();
    let limiter = RateLimiter::new(&cache, "http-api", Algorithm::fixed_window(LIMIT, WINDOW));
    // Start from a clean slate for this demo's client, so that reruns within the
    // window print the same thing. (A real service never does this.)
    limiter.reset("127.0.0.1").await;

    let app = Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .layer(middleware::from_fn_with_state(limiter.clone(), rate_limit));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });

    println!(
        "serving on http://{addr} ({} limiter, backend {}, limit {LIMIT} per {WINDOW:?})",
        if limiter.is_enforcing() {
            "enforcing"
        } else {
            "allow-all"
        },
        cache.backend(),
    );
    for i in 1..=REQUESTS {
        let reply = tokio::task::spawn_blocking(move || get_once(addr, "/hello")).await??;
        println!("request {i}: {reply}");
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// The middleware: one check per request, keyed by the client's IP address.
async fn rate_limit(
    State(limiter): State<RateLimiter>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let decision = limiter.check_detailed(peer.ip().to_string()).await;
    if !decision.allowed {
        let mut response = (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n").into_response();
        let headers = response.headers_mut();
        headers.insert("retry-after", seconds(decision.reset_after));
        rate_limit_headers(headers, &limiter, &decision);
        return response;
    }
    let mut response = next.run(request).await;
    rate_limit_headers(response.headers_mut(), &limiter, &decision);
    response
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset`, unless the limiter could not count
/// (degraded: Redis absent or failing), in which case there is nothing true to say.
fn rate_limit_headers(headers: &mut HeaderMap, limiter: &RateLimiter, d: &Decision) {
    if d.degraded {
        return;
    }
    headers.insert("ratelimit-limit", HeaderValue::from(limiter.limit()));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("ratelimit-reset", seconds(d.reset_after));
}

/// Whole seconds, rounded up (a client that waits this long is not early).
fn seconds(d: Duration) -> HeaderValue {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    HeaderValue::from(secs)
}

/// A minimal HTTP/1.1 GET over a plain socket; returns the status line and the rate
/// limit headers.
fn get_once(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let mut lines = response.lines();
    let status = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("HTTP/1.1 ")
        .to_owned();
    let mut out = status;
    for line in lines.take_while(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("ratelimit-") || lower.starts_with("retry-after") {
            out.push_str("  ");
            out.push_str(line);
        }
    }
    Ok(out)
}
