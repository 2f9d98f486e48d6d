//! How to reach Redis: URLs, credentials, TLS roots and secrets, resolved once for
//! every store that talks to Redis (the single server and the cluster alike).

use std::time::Duration;

use redis::IntoConnectionInfo as _;

use crate::error::{CacheError, ConfigError};
use crate::redact::{redact_url, redact_urls};

/// The default time allowed for making one connection (TCP, TLS and handshake). It runs
/// in the background, so it may be longer than the operation deadline.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connection settings that do not depend on the URL: credentials used when a URL
/// carries none, the connect timeout and a private CA for `rediss://`.
#[derive(Clone)]
pub(crate) struct ConnectionSettings {
    /// Used when a URL carries no password (`REDIS_PASSWORD`, or the builder's).
    pub(crate) password: Option<String>,
    /// Used when a URL carries no user name.
    pub(crate) username: Option<String>,
    pub(crate) connect_timeout: Duration,
    /// A PEM CA certificate to trust for `rediss://` (and an Upstash `https://` URL)
    /// instead of the public roots.
    #[cfg(any(feature = "tls", feature = "upstash"))]
    pub(crate) root_ca: Option<Vec<u8>>,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            password: None,
            username: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            #[cfg(any(feature = "tls", feature = "upstash"))]
            root_ca: None,
        }
    }
}

impl std::fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ConnectionSettings");
        d.field("password", &self.password.as_ref().map(|_| "***"))
            .field("username", &self.username)
            .field("connect_timeout", &self.connect_timeout);
        #[cfg(any(feature = "tls", feature = "upstash"))]
        d.field("tls_root_ca", &self.root_ca.as_ref().map(|_| "set"));
        d.finish()
    }
}

/// One Redis endpoint, parsed, with the settings' credentials filled in where the URL
/// had none.
pub(crate) struct Endpoint {
    pub(crate) info: redis::ConnectionInfo,
    /// The URL with its password replaced by `***`, for logs and health reports.
    pub(crate) display: String,
    /// The password in use (from the URL or the settings), to scrub from messages.
    pub(crate) password: Option<String>,
}

impl ConnectionSettings {
    /// Parses `url` and fills in the user name and password when it carries none.
    /// The error names what is wrong and never contains the password.
    pub(crate) fn resolve(&self, url: &str) -> Result<Endpoint, ConfigError> {
        let url = url.trim();
        let display = redact_url(url);
        let invalid = |why: String| ConfigError::InvalidUrl(format!("{why} (in {display})"));
        if let Some(why) = diagnose_url(url) {
            return Err(invalid(why));
        }
        let info = url
            .into_connection_info()
            .map_err(|e| invalid(redact_urls(&e.to_string())))?;
        let mut settings = info.redis_settings().clone();
        if settings.password().is_none()
            && let Some(pw) = self.password.as_deref().filter(|p| !p.is_empty())
        {
            settings = settings.set_password(pw);
        }
        if settings.username().is_none()
            && let Some(user) = self.username.as_deref().filter(|u| !u.is_empty())
        {
            settings = settings.set_username(user);
        }
        let password = settings.password().map(str::to_owned);
        Ok(Endpoint {
            info: info.set_redis_settings(settings),
            display,
            password,
        })
    }

    /// The certificates to trust for `rediss://`: the private CA when one was given.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_certificates(&self) -> Option<redis::TlsCertificates> {
        self.root_ca.as_ref().map(|pem| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }
}

/// The error of an operation attempted outside a tokio runtime.
pub(crate) fn no_runtime() -> CacheError {
    CacheError::Unavailable("no tokio runtime: cache operations must run inside one".into())
}

/// Whether a tokio runtime is available to drive connections; installs the TLS crypto
/// provider on the way, since every connection that needs one starts here.
pub(crate) fn runtime_for_connections() -> Result<tokio::runtime::Handle, CacheError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| no_runtime())?;
    #[cfg(any(feature = "tls", feature = "upstash"))]
    install_crypto_provider();
    Ok(handle)
}

/// rustls needs a process-wide crypto provider, and cannot pick one by itself when an
/// application enables several (ring here, aws-lc-rs elsewhere): the first `rediss://`
/// handshake (or the Upstash client's construction) would panic. Installs ring's unless
/// the application installed one.
#[cfg(any(feature = "tls", feature = "upstash"))]
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Names what is wrong with a Redis URL more precisely than redis-rs does
/// ("Redis URL did not parse"). Never includes the password.
pub(crate) fn diagnose_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return Some("the URL is empty".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("missing scheme: expected redis://host:port or rediss://host:port".into());
    };
    match scheme {
        "redis" | "rediss" | "valkey" | "valkeys" | "redis+unix" | "valkey+unix" | "unix" => {}
        "http" | "https" if cfg!(feature = "upstash") => {
            return Some(format!(
                "unsupported scheme '{scheme}' for a Redis URL: a REST URL is used with \
                 CACHE_PROVIDER=upstash (or the builder's upstash()); or give the \
                 redis:// or rediss:// endpoint"
            ));
        }
        "http" | "https" => {
            return Some(format!(
                "unsupported scheme '{scheme}': the Upstash REST API needs cacheward's \
                 `upstash` feature; or give the redis:// or rediss:// endpoint"
            ));
        }
        other => {
            return Some(format!(
                "unsupported scheme '{other}' (expected redis:// or rediss://)"
            ));
        }
    }
    if scheme.ends_with("unix") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Some("unterminated IPv6 address".into()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Some("missing host".into());
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Some(format!("invalid port '{p}' (expected 1-65535)"));
    }
    None
}

/// Turns one entry of a seed list into a URL: `host:port` becomes
/// `redis://host:port` (or `rediss://` when `tls`); a full URL is kept as is.
pub(crate) fn seed_url(entry: &str, tls: bool) -> String {
    let entry = entry.trim();
    if entry.contains("://") {
        entry.to_owned()
    } else if tls {
        format!("rediss://{entry}")
    } else {
        format!("redis://{entry}")
    }
}

/// Splits a comma-separated node list (`REDIS_CLUSTER_NODES`) into seed URLs.
pub(crate) fn parse_node_list(list: &str, tls: bool) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| seed_url(s, tls))
        .collect()
}

/// The password written in a URL's user-info, if any.
pub(crate) fn url_password(url: &str) -> Option<String> {
    if redact_url(url) == url {
        return None;
    }
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_urls_are_named_precisely_without_the_password() {
        let cases = [
            ("", "empty"),
            ("localhost:6379", "missing scheme"),
            ("http://h:1", "unsupported scheme 'http'"),
            ("https://x.upstash.io", "upstash"),
            ("redis://:hunter2@", "missing host"),
            ("redis://:hunter2@host:notaport", "invalid port 'notaport'"),
            ("redis://:hunter2@host:99999", "invalid port '99999'"),
            ("redis://:hunter2@host:6379/notadb", "database"),
        ];
        for (url, expected) in cases {
            let Err(err) = ConnectionSettings::default().resolve(url) else {
                panic!("{url} parsed");
            };
            let msg = err.to_string();
            assert!(msg.contains(expected), "{url}: {msg}");
            assert!(!msg.contains("hunter2"), "{url}: {msg}");
        }
    }

    #[test]
    fn the_password_is_filled_in_only_when_the_url_has_none() {
        let settings = ConnectionSettings {
            password: Some("fromenv".into()),
            ..Default::default()
        };
        let e = settings.resolve("redis://127.0.0.1:6379/2").unwrap();
        assert_eq!(e.password.as_deref(), Some("fromenv"));
        let e = settings
            .resolve("redis://app:inurl@127.0.0.1:6379")
            .unwrap();
        assert_eq!(e.password.as_deref(), Some("inurl"));
        assert_eq!(e.display, "redis://app:***@127.0.0.1:6379");
        assert!(format!("{settings:?}").contains("***"));
        assert!(!format!("{settings:?}").contains("fromenv"));
        assert!(
            ConnectionSettings::default()
                .resolve("redis://[::1]:6379")
                .is_ok()
        );
        #[cfg(feature = "tls")]
        assert!(
            ConnectionSettings::default()
                .resolve("rediss://cache.example.com:6380")
                .is_ok()
        );
    }

    #[test]
    fn node_lists_become_seed_urls() {
        assert_eq!(
            parse_node_list(" redis1:6379, redis2:6379 ,,rediss://r3:7000", false),
            vec![
                "redis://redis1:6379",
                "redis://redis2:6379",
                "rediss://r3:7000"
            ]
        );
        assert_eq!(parse_node_list("r1:1", true), vec!["rediss://r1:1"]);
    }

    #[test]
    fn url_passwords_are_found() {
        assert_eq!(url_password("redis://u:pw@h:1").as_deref(), Some("pw"));
        assert_eq!(url_password("redis://h:1"), None);
    }
}
