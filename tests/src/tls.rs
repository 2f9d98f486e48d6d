//! A TLS-only redis-server with a certificate from a private CA, for `rediss://` tests.

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, redis_server_binary};

/// A TLS-only redis-server, killed on drop.
#[derive(Debug)]
pub struct TlsServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsServer {
    /// `rediss://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The PEM certificate of the CA that signed the server's certificate.
    pub fn ca_certificate(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).expect("the test CA's certificate")
    }
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

/// Writes a private CA (`ca.crt`, `ca.key`) and a certificate for 127.0.0.1 signed by
/// it (`server.crt`, `server.key`) into `dir`, with `openssl`.
pub fn write_test_certificates(dir: &Path) {
    let dir = dir.to_path_buf();
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
}

/// A private CA and a certificate for 127.0.0.1 signed by it, in PEM.
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// The CA's certificate, to trust.
    pub ca: Vec<u8>,
    /// The server's certificate.
    pub chain: Vec<u8>,
    /// The server's private key.
    pub key: Vec<u8>,
}

/// Makes a fresh [`TestCertificates`] in a temporary folder, removed afterwards.
pub fn test_certificates() -> TestCertificates {
    let dir = std::env::temp_dir().join(format!(
        "cacheward-certs-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    write_test_certificates(&dir);
    let read = |name: &str| std::fs::read(dir.join(name)).expect("a test certificate");
    let certificates = TestCertificates {
        ca: read("ca.crt"),
        chain: read("server.crt"),
        key: read("server.key"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    certificates
}

/// Makes a private CA and a server certificate with `openssl`, then starts a
/// redis-server that only speaks TLS, signed by that CA.
pub fn start_tls_server() -> TlsServer {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("cacheward-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_test_certificates(&dir);
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
