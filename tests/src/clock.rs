//! The server clock, for the rate limiter's scenarios: windows are aligned to the
//! clock of Redis, not to this process's.

use std::time::{Duration, Instant};

use crate::{RawConnection, Target};

/// The server clock, mapped onto this process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct ServerClock {
    base: Instant,
    base_server_ms: f64,
    /// Half the round trip of the best sample: how far off the mapping can be.
    pub uncertainty_ms: f64,
}

impl ServerClock {
    /// Reads `TIME` a few times and keeps the sample with the shortest round trip.
    pub async fn measure(raw: &mut RawConnection) -> ServerClock {
        let mut best: Option<ServerClock> = None;
        for _ in 0..10 {
            let sent = Instant::now();
            let (s, us): (i64, i64) = redis::cmd("TIME").query_async(raw).await.expect("TIME");
            let rtt = sent.elapsed();
            let sample = ServerClock {
                base: sent + rtt / 2,
                base_server_ms: s as f64 * 1000.0 + us as f64 / 1000.0,
                uncertainty_ms: rtt.as_secs_f64() * 500.0,
            };
            if best.is_none_or(|b| sample.uncertainty_ms < b.uncertainty_ms) {
                best = Some(sample);
            }
        }
        best.expect("at least one sample")
    }

    /// The server time (ms since the epoch) at a local instant.
    pub fn server_ms(&self, at: Instant) -> f64 {
        if at >= self.base {
            self.base_server_ms + (at - self.base).as_secs_f64() * 1000.0
        } else {
            self.base_server_ms - (self.base - at).as_secs_f64() * 1000.0
        }
    }

    /// The local instant at a server time.
    pub fn local(&self, server_ms: f64) -> Instant {
        let delta = server_ms - self.base_server_ms;
        if delta >= 0.0 {
            self.base + Duration::from_secs_f64(delta / 1000.0)
        } else {
            self.base - Duration::from_secs_f64(-delta / 1000.0)
        }
    }

    /// The start (server ms) of the next window of `window_ms` that begins at least
    /// `min_wait_ms` from now.
    pub fn next_boundary(&self, window_ms: u64, min_wait_ms: f64) -> u64 {
        let now = self.server_ms(Instant::now()) + min_wait_ms;
        (now as u64 / window_ms + 1) * window_ms
    }
}

/// Sleeps until `server_ms` (plus `margin_ms`) on the server clock.
pub async fn sleep_until_server(clock: &ServerClock, server_ms: u64, margin_ms: f64) {
    tokio::time::sleep_until(clock.local(server_ms as f64 + margin_ms).into()).await;
}

/// Makes sure no window boundary of `window` falls in the next `needed`: waits for the
/// next boundary if it is closer than that.
pub async fn clear_of_boundary(target: &Target, window: Duration, needed: Duration) {
    let mut raw = target.raw().await;
    let clock = ServerClock::measure(&mut raw).await;
    let w = window.as_millis() as u64;
    let now = clock.server_ms(Instant::now());
    let next = (now as u64 / w + 1) * w;
    if (next as f64 - now) < needed.as_millis() as f64 {
        sleep_until_server(&clock, next, 20.0).await;
    }
}
