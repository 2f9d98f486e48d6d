//! The Upstash backend: Redis commands over Upstash's REST API.
//!
//! Every command is one HTTPS request: `POST /` with the command as a JSON array of
//! strings (`["SET","k","v","PX","300000"]`), a batch is one `POST /pipeline` with an
//! array of such arrays, and every request carries `Authorization: Bearer <token>`.
//! Replies are asked for with `Upstash-Encoding: base64`, so a value that is not UTF-8
//! comes back intact: every string of the reply is base64, numbers and nulls are
//! plain, and errors are never encoded.
//!
//! The requests go through one pooled keep-alive client (reqwest over rustls), shared by
//! every clone of the cache. The store speaks redis-rs's [`ConnectionLike`] interface,
//! so commands, pipelines and scripts are built exactly as for the TCP stores: a script
//! is sent as `EVALSHA` and, when the server answers `NOSCRIPT`, loaded and run again.
//!
//! Replies map onto the runtime's error classes, so the guard's deadline and breaker
//! work unchanged: HTTP 401/403 is refused credentials ([`CacheError::Auth`]); a
//! connection that cannot be made or is lost, a 5xx or 429, or a reply that is not the
//! REST protocol is an outage ([`CacheError::Unavailable`]); a 400 with
//! `{"error": "..."}` is a command the live server refused ([`CacheError::Redis`]).
//! The token is never shown: not in `Debug`, not in the endpoint, and the builder
//! hands it to the guard, which scrubs it from every error message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use super::Backend;
use super::remote::{RemoteStore, ScriptArg, invocation};
use super::settings::ConnectionSettings;
use crate::error::{CacheError, ConfigError};

/// The request header that asks for base64-encoded strings in replies.
const ENCODING_HEADER: &str = "upstash-encoding";

pub(crate) struct UpstashStore {
    /// Replaced by [`RemoteStore::reset_connection`], which drops the pooled connections.
    http: ArcSwap<Http>,
    /// What a new client is built from (connect timeout, private CA).
    settings: ConnectionSettings,
    command_url: reqwest::Url,
    pipeline_url: reqwest::Url,
    /// `Bearer <token>`, marked sensitive.
    auth: HeaderValue,
    /// The REST URL, for logs and health reports (it never holds the token).
    display_url: String,
}

/// Marks the client cold when dropped: an operation that did not get its answer (an
/// error, or dropped at its deadline) may have cost the pool its live connection.
struct ColdUnlessAnswered<'a>(&'a AtomicBool);

impl Drop for ColdUnlessAnswered<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// The HTTP client and what is known of its connections.
struct Http {
    client: reqwest::Client,
    /// Whether this client has had an answer (so it holds a live connection).
    warm: AtomicBool,
    /// Whether a background request is making a connection for it right now.
    warming: AtomicBool,
}

impl Http {
    fn new(client: reqwest::Client) -> Http {
        Http {
            client,
            warm: AtomicBool::new(false),
            warming: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for UpstashStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstashStore")
            .field("url", &self.display_url)
            .field("token", &"***")
            .finish()
    }
}

/// Why an Upstash REST URL cannot be used; `None` when it can.
pub(crate) fn diagnose_rest_url(url: &str) -> Option<String> {
    let parsed = match reqwest::Url::parse(url.trim()) {
        Ok(u) => u,
        Err(e) => return Some(format!("not a URL: {e}")),
    };
    if !matches!(parsed.scheme(), "https" | "http") {
        return Some(format!(
            "unsupported scheme '{}' for the Upstash REST API (expected https://)",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Some("missing host".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Some("the REST URL must not have a query or a fragment".into());
    }
    None
}

impl UpstashStore {
    /// A store for the REST URL `url` (`https://<db>.upstash.io`) with `token`.
    pub(crate) fn new(
        url: &str,
        token: &str,
        settings: &ConnectionSettings,
    ) -> Result<Self, ConfigError> {
        let display_url = crate::redact::redact_url(url.trim());
        let invalid = |why: String| ConfigError::InvalidUrl(format!("{why} (in {display_url})"));
        if let Some(why) = diagnose_rest_url(url) {
            return Err(invalid(why));
        }
        if token.is_empty() {
            return Err(invalid(
                "no Upstash token: set REDIS_PASSWORD (or the builder's token)".into(),
            ));
        }
        if crate::redact::redact_url(url.trim()) != url.trim() {
            return Err(invalid(
                "credentials in the REST URL: pass the token separately".into(),
            ));
        }
        let mut base = reqwest::Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
        // `https://host/prefix` and `https://host/prefix/` both put commands at
        // `/prefix/` and batches at `/prefix/pipeline`.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let command_url = base.clone();
        let pipeline_url = base.join("pipeline").map_err(|e| invalid(e.to_string()))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| invalid("the token holds characters a header cannot carry".into()))?;
        auth.set_sensitive(true);
        let http = http_client(settings)
            .map_err(|e| invalid(format!("cannot build the HTTPS client: {e}")))?;
        Ok(UpstashStore {
            http: ArcSwap::from_pointee(Http::new(http)),
            settings: ConnectionSettings {
                password: None,
                ..settings.clone()
            },
            command_url,
            pipeline_url,
            auth,
            display_url: display_url.trim_end_matches('/').to_owned(),
        })
    }

    fn conn(&self) -> Conn<'_> {
        Conn(self)
    }

    /// Makes a connection in the background when the client has none that answered.
    ///
    /// A new HTTPS connection (TCP and TLS handshakes, more round trips to a distant
    /// region) can take longer than the operation deadline, and an operation that
    /// gives up at its deadline drops the connection it was making: with a short
    /// deadline no operation would ever get a connection. This request runs to the
    /// end (bounded by the connect timeout plus one second) and leaves its connection
    /// in the pool for the operations that follow.
    fn warm_up(&self, http: &Arc<Http>) {
        if http.warm.load(Ordering::Relaxed) || http.warming.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            http.warming.store(false, Ordering::Release);
            return;
        };
        let request = http
            .client
            .post(self.command_url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(r#"["PING"]"#)
            .timeout(self.settings.connect_timeout + Duration::from_secs(1));
        let http = http.clone();
        runtime.spawn(async move {
            if let Ok(response) = request.send().await {
                let _ = response.bytes().await;
                http.warm.store(true, Ordering::Release);
            }
            http.warming.store(false, Ordering::Release);
        });
    }

    /// One `POST` of a JSON body; the parsed JSON reply of a 200.
    async fn post(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<serde_json::Value, Reply> {
        let http = self.http.load_full();
        self.warm_up(&http);
        // An operation dropped at its deadline closes the connection it was using, which
        // may have been the pool's only one: the client is cold again unless it answers.
        let cold_unless_answered = ColdUnlessAnswered(&http.warm);
        let sent = http
            .client
            .post(url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ENCODING_HEADER, "base64")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Err(Reply::Failed(transport_error(&e))),
        };
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Reply::Failed(transport_error(&e)))?;
        std::mem::forget(cold_unless_answered);
        http.warm.store(true, Ordering::Relaxed);
        match status.as_u16() {
            200 => serde_json::from_slice(&bytes)
                .map_err(|e| Reply::Failed(protocol_error(format!("the reply is not JSON: {e}")))),
            401 | 403 => Err(Reply::Failed(RedisError::from((
                ErrorKind::AuthenticationFailed,
                "Upstash refused the token",
                format!("HTTP {status}"),
            )))),
            400 => match error_field(&bytes) {
                Some(message) => Err(Reply::Refused(message)),
                None => Err(Reply::Failed(protocol_error(format!(
                    "HTTP {status} without an error message"
                )))),
            },
            _ => {
                let detail = error_field(&bytes).unwrap_or_default();
                Err(Reply::Failed(unavailable(format!(
                    "HTTP {status} {detail}"
                ))))
            }
        }
    }

    async fn command(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        let body = match command_json(cmd) {
            Ok(args) => serde_json::to_vec(&args).map_err(|e| protocol_error(e.to_string()))?,
            Err(refusal) => return Ok(refusal),
        };
        match self.post(&self.command_url, body).await {
            Ok(reply) => match reply {
                serde_json::Value::Object(mut fields) => match fields.remove("result") {
                    Some(result) => decode(result),
                    None => match fields.remove("error") {
                        Some(serde_json::Value::String(e)) => Ok(server_error(&e)),
                        _ => Err(protocol_error("a reply without result".into())),
                    },
                },
                _ => Err(protocol_error("a reply that is not an object".into())),
            },
            Err(Reply::Refused(message)) => Ok(server_error(&message)),
            Err(Reply::Failed(e)) => Err(e),
        }
    }

    async fn pipeline(
        &self,
        pipe: &Pipeline,
        offset: usize,
        count: usize,
    ) -> Result<Vec<Value>, RedisError> {
        if pipe.is_transaction() {
            return Err(RedisError::from((
                ErrorKind::Client,
                "MULTI/EXEC pipelines are not sent over the Upstash REST API",
            )));
        }
        let mut commands = Vec::new();
        for cmd in pipe.cmd_iter() {
            match command_json(cmd) {
                Ok(args) => commands.push(args),
                Err(refusal) => return Ok(vec![refusal; count]),
            }
        }
        let body = serde_json::to_vec(&commands).map_err(|e| protocol_error(e.to_string()))?;
        let reply = match self.post(&self.pipeline_url, body).await {
            Ok(reply) => reply,
            Err(Reply::Refused(message)) => return Ok(vec![server_error(&message); count]),
            Err(Reply::Failed(e)) => return Err(e),
        };
        let serde_json::Value::Array(items) = reply else {
            return Err(protocol_error(
                "a pipeline reply that is not an array".into(),
            ));
        };
        if items.len() != commands.len() {
            return Err(protocol_error(format!(
                "{} replies to a pipeline of {}",
                items.len(),
                commands.len()
            )));
        }
        items
            .into_iter()
            .skip(offset)
            .take(count)
            .map(|item| match item {
                serde_json::Value::Object(mut fields) => match fields.remove("result") {
                    Some(result) => decode(result),
                    None => match fields.remove("error") {
                        Some(serde_json::Value::String(e)) => Ok(server_error(&e)),
                        _ => Err(protocol_error("a pipeline entry without result".into())),
                    },
                },
                _ => Err(protocol_error(
                    "a pipeline entry that is not an object".into(),
                )),
            })
            .collect()
    }
}

/// The outcome of a request that did not succeed.
enum Reply {
    /// The server refused the command (400 with an error message).
    Refused(String),
    /// No answer from Upstash, or not one the protocol allows.
    Failed(RedisError),
}

/// The pooled keep-alive client: HTTP/1.1 over rustls (the system's roots, or only
/// the private CA when one is set), connections kept for reuse.
fn http_client(settings: &ConnectionSettings) -> reqwest::Result<reqwest::Client> {
    super::settings::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .http1_only()
        .user_agent(concat!("cacheward/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &settings.root_ca {
        builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem)?);
    }
    builder.build()
}

/// A command as the JSON array of strings the REST API takes, or the error reply for
/// an argument that is not UTF-8 (JSON strings cannot carry arbitrary bytes).
fn command_json(cmd: &Cmd) -> Result<Vec<&str>, Value> {
    cmd.args_iter()
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => std::str::from_utf8(bytes).map_err(|_| {
                server_error(
                    "ERR an argument is not UTF-8, which the Upstash REST API cannot carry",
                )
            }),
            _ => Err(server_error(
                "ERR cursor arguments are not sent over the Upstash REST API",
            )),
        })
        .collect()
}

/// The `"error"` string of a JSON reply body, if it has one.
fn error_field(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("error")?.as_str().map(str::to_owned)
}

/// A Redis error reply (`ERR …`, `NOSCRIPT …`, `WRONGTYPE …`), parsed as redis-rs
/// parses one read from a socket, so its kind is recognised (`NOSCRIPT` makes a script
/// invocation load the script; `LOADING` and the like count as outages).
fn server_error(message: &str) -> Value {
    let line: String = message
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    let line = if line.is_empty() { "ERR" } else { &line };
    match redis::parse_redis_value(format!("-{line}\r\n").as_bytes()) {
        Ok(v @ Value::ServerError(_)) => v,
        _ => Value::ServerError(
            match redis::parse_redis_value(b"-ERR unreadable error reply\r\n") {
                Ok(Value::ServerError(e)) => e,
                _ => unreachable!("a fixed, valid error line parses"),
            },
        ),
    }
}

/// An outage: Upstash could not be reached or is not serving.
fn unavailable(detail: String) -> RedisError {
    RedisError::from(std::io::Error::other(format!("Upstash: {detail}")))
}

/// Something answered that does not speak the REST protocol (counted as an outage).
fn protocol_error(detail: String) -> RedisError {
    RedisError::from((ErrorKind::Parse, "unexpected Upstash reply", detail))
}

/// A transport failure with its causes (`connection refused`, `operation timed out`).
fn transport_error(e: &reqwest::Error) -> RedisError {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    unavailable(msg)
}

/// A base64-encoded reply as a redis-rs [`Value`]: strings are decoded (the status
/// reply `OK` may come unencoded), integers stay integers, null is nil.
fn decode(json: serde_json::Value) -> Result<Value, RedisError> {
    use serde_json::Value as J;
    Ok(match json {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Int(i64::from(b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) if s == "OK" => Value::Okay,
        J::String(s) => Value::BulkString(
            base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| protocol_error(format!("a string that is not base64: {e}")))?,
        ),
        J::Array(items) => Value::Array(items.into_iter().map(decode).collect::<Result<_, _>>()?),
        J::Object(_) => return Err(protocol_error("an object inside a reply".into())),
    })
}

/// redis-rs's connection interface over the REST API, borrowed from the store.
struct Conn<'s>(&'s UpstashStore);

impl ConnectionLike for Conn<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.0.command(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.0.pipeline(pipeline, offset, count))
    }

    fn get_db(&self) -> i64 {
        0
    }
}

impl RemoteStore for UpstashStore {
    fn backend(&self) -> Backend {
        Backend::Upstash
    }

    fn endpoint(&self) -> &str {
        &self.display_url
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn())
            .await?)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        Ok(redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.conn())
            .await?)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        Ok(redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(super::ttl_millis(ttl))
            .query_async(&mut self.conn())
            .await?)
    }

    async fn set_many(&self, entries: &[(&str, Vec<u8>)], ttl: Duration) -> Result<(), CacheError> {
        let ms = super::ttl_millis(ttl);
        let mut pipe = redis::pipe();
        for (k, v) in entries {
            pipe.cmd("SET")
                .arg(*k)
                .arg(v.as_slice())
                .arg("PX")
                .arg(ms)
                .ignore();
        }
        Ok(pipe.query_async(&mut self.conn()).await?)
    }

    async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        Ok(redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut self.conn())
            .await?)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(redis::cmd("PING").query_async(&mut self.conn()).await?)
    }

    async fn eval(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[ScriptArg<'_>],
    ) -> Result<Value, CacheError> {
        Ok(invocation(script, keys, args)
            .invoke_async(&mut self.conn())
            .await?)
    }

    /// Replaces the client, closing every pooled connection (a half-open one would
    /// otherwise be reused until the operating system gives up on it).
    fn reset_connection(&self) {
        match http_client(&self.settings) {
            Ok(client) => {
                self.http.store(Arc::new(Http::new(client)));
                tracing::debug!(url = %self.display_url, "cacheward: dropping the Upstash connections; the next request reconnects");
            }
            Err(e) => {
                tracing::warn!(url = %self.display_url, error = %e, "cacheward: could not rebuild the Upstash HTTPS client - keeping the old one");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_decode_from_base64() {
        let v = decode(serde_json::json!(["aMOpbGxv", 3, null, "OK", ["YQ=="]])).unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::BulkString("héllo".as_bytes().to_vec()),
                Value::Int(3),
                Value::Nil,
                Value::Okay,
                Value::Array(vec![Value::BulkString(b"a".to_vec())]),
            ])
        );
        assert!(decode(serde_json::json!("not base64!")).is_err());
    }

    #[test]
    fn error_replies_keep_their_kind() {
        let Value::ServerError(e) =
            server_error("NOSCRIPT No matching script.\r\nPlease use EVAL.")
        else {
            panic!("not an error");
        };
        assert_eq!(e.kind(), Some(redis::ServerErrorKind::NoScript));
        let err: CacheError = RedisError::from(e).into();
        assert!(matches!(err, CacheError::Redis(_)), "{err:?}");
        let Value::ServerError(e) = server_error("LOADING Redis is loading") else {
            panic!("not an error");
        };
        let err: CacheError = RedisError::from(e).into();
        assert!(err.is_outage(), "{err:?}");
        let auth: CacheError = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Upstash refused the token",
            "HTTP 401".to_owned(),
        ))
        .into();
        assert!(matches!(auth, CacheError::Auth(_)), "{auth:?}");
        assert!(CacheError::from(unavailable("HTTP 503".into())).is_outage());
        assert!(CacheError::from(protocol_error("x".into())).is_outage());
    }

    #[test]
    fn commands_become_json_string_arrays() {
        let mut cmd = redis::cmd("SET");
        cmd.arg("k").arg("v").arg("PX").arg(300_000u64);
        assert_eq!(
            serde_json::to_string(&command_json(&cmd).unwrap()).unwrap(),
            r#"["SET","k","v","PX","300000"]"#
        );
        let mut binary = redis::cmd("SET");
        binary.arg("k").arg(&[0xff_u8, 0xfe][..]);
        assert!(matches!(command_json(&binary), Err(Value::ServerError(_))));
    }

    #[test]
    fn urls_and_tokens_are_checked_and_the_token_never_shown() {
        let s = ConnectionSettings::default();
        let store = UpstashStore::new("https://eu1-x.upstash.io", "tok-s3cret", &s).unwrap();
        assert_eq!(store.endpoint(), "https://eu1-x.upstash.io");
        assert_eq!(store.command_url.as_str(), "https://eu1-x.upstash.io/");
        assert_eq!(
            store.pipeline_url.as_str(),
            "https://eu1-x.upstash.io/pipeline"
        );
        assert!(!format!("{store:?}").contains("tok-s3cret"));
        let prefixed = UpstashStore::new("http://127.0.0.1:8080/db", "t", &s).unwrap();
        assert_eq!(
            prefixed.pipeline_url.as_str(),
            "http://127.0.0.1:8080/db/pipeline"
        );
        for (url, token, expected) in [
            ("https://x.upstash.io", "", "no Upstash token"),
            ("redis://x:6379", "t", "unsupported scheme 'redis'"),
            ("https://", "t", "not a URL"),
            ("https://x.upstash.io?_token=abc", "t", "query"),
            ("https://u:pw9@x.upstash.io", "t", "credentials"),
        ] {
            let err = UpstashStore::new(url, token, &s).unwrap_err().to_string();
            assert!(err.contains(expected), "{url}: {err}");
            assert!(!err.contains("pw9"), "{err}");
        }
    }
}
