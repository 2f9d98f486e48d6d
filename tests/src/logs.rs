//! Log capture: a test's `tracing` output as text lines.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Collects the `tracing` output of a test, formatted as text lines, so a test can
/// assert on what was logged (for example that no line holds a password).
///
/// [`LogCapture::install`] makes the capture the default subscriber of the current
/// thread until the returned guard is dropped: use it from a current-thread runtime
/// (plain `#[tokio::test]`), where every task runs on the test's thread.
///
/// A thread-local subscriber can miss events while other threads of the process emit
/// the same events (tracing caches each call site's interest process-wide), so the
/// tests that capture logs live in a test binary of their own, and the guard also
/// holds a process-wide lock: two captures never run at once.
#[derive(Clone, Default)]
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCapture")
            .field("lines", &self.lines().len())
            .finish()
    }
}

/// The writer [`LogCapture`] hands to the subscriber.
#[derive(Debug)]
pub struct LogCaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCaptureWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogCaptureWriter(self.buf.clone())
    }
}

/// Keeps a [`LogCapture`] installed (and other captures waiting) until dropped.
#[derive(Debug)]
pub struct LogCaptureGuard {
    _subscriber: tracing::subscriber::DefaultGuard,
    _turn: MutexGuard<'static, ()>,
}

impl LogCapture {
    /// Starts capturing every event (all levels) on this thread, once no other
    /// capture is installed.
    pub fn install() -> (LogCapture, LogCaptureGuard) {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let subscriber = tracing::subscriber::set_default(subscriber);
        (
            capture,
            LogCaptureGuard {
                _subscriber: subscriber,
                _turn: turn,
            },
        )
    }

    /// Every line captured so far.
    pub fn lines(&self) -> Vec<String> {
        let buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines that contain `needle`.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }
}
