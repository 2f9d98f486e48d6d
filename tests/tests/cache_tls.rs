//! `rediss://`: a TLS-only redis-server with a certificate from a private CA.

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cacheward::Cache;
use cacheward_tests::{free_port, redis_server_binary};

/// A TLS-only redis-server, killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make the test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_tls_server() -> TlsServer {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("cacheward-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=cacheward test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let child = Command::new(redis_server_binary())
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let server = TlsServer { child, port, dir };
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(Instant::now() < until, "the TLS redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

#[tokio::test]
async fn rediss_round_trip_with_a_private_ca() {
    let server = start_tls_server();
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let ca = std::fs::read(server.dir.join("ca.crt")).unwrap();

    let cache = Cache::builder()
        .redis_url(&url)
        .tls_root_ca(ca)
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    cache
        .set("tls:k", &"over tls", Duration::from_secs(60))
        .await;
    assert_eq!(
        cache.get::<String>("tls:k").await.as_deref(),
        Some("over tls")
    );
    assert!(cache.health().await.healthy);

    // Without the CA the certificate is not trusted: a miss, and health says why.
    let untrusted = Cache::builder()
        .redis_url(&url)
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    assert_eq!(untrusted.get::<String>("tls:k").await, None);
    let health = untrusted.health().await;
    assert!(!health.healthy);
    let err = health.error.unwrap();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
