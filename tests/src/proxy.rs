//! A TCP proxy on 127.0.0.1 that can cut the network without closing anything.
//!
//! [`TcpProxy::start`] listens on a free loopback port and forwards every connection
//! to an upstream address. [`TcpProxy::partition`] stops passing bytes in both
//! directions on every connection, open or new, while both sides stay connected: what
//! a network partition or a dead NAT entry looks like to a client. [`TcpProxy::heal`]
//! lets new connections through again; the connections that were open during the
//! partition stay silent forever (half-open), so a client recovers only by noticing
//! and reconnecting. Nothing is dropped mid-stream: TCP never loses bytes of a live
//! connection, so neither does the proxy.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A loopback TCP proxy owned by a test; it stops when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    /// The current generation: connections opened in an earlier generation than the
    /// last partition are dead for good.
    state: watch::Sender<State>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    partitioned: bool,
    /// Bumped by every partition; a connection born before it never passes bytes again.
    epoch: u64,
}

impl TcpProxy {
    /// Starts forwarding `127.0.0.1:<free port>` to `upstream` (a loopback address).
    /// Must be called inside a tokio runtime.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        assert!(
            upstream.ip().is_loopback(),
            "the proxy only forwards to loopback"
        );
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy's port");
        let port = listener.local_addr().expect("proxy address").port();
        let (state, _) = watch::channel(State {
            partitioned: false,
            epoch: 0,
        });
        let rx = state.subscribe();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let rx = rx.clone();
                tokio::spawn(async move {
                    let born = rx.borrow().epoch;
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(
                        pump(cr, sw, rx.clone(), born),
                        pump(sr, cw, rx.clone(), born)
                    );
                });
            }
        });
        TcpProxy {
            port,
            state,
            accept,
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops passing bytes on every connection, without closing any.
    pub fn partition(&self) {
        self.state.send_modify(|s| {
            s.partitioned = true;
            s.epoch += 1;
        });
    }

    /// Lets new connections through again. Connections open during the partition stay
    /// silent (half-open).
    pub fn heal(&self) {
        self.state.send_modify(|s| s.partitioned = false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to` while the connection is allowed to pass bytes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut state: watch::Receiver<State>,
    born: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Wait until this connection may pass bytes; a connection older than the last
        // partition never may again (it waits until the proxy is dropped).
        if state
            .wait_for(|s| !s.partitioned && s.epoch == born)
            .await
            .is_err()
        {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            // A partition that begins while we wait for bytes: stop before reading.
            changed = state.wait_for(|s| s.partitioned || s.epoch != born) => {
                if changed.is_err() { return; }
                continue;
            }
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
