//! A private Postgres server per test: `initdb` in a temporary directory, `pg_ctl
//! start` on a free loopback port, `pg_ctl stop` on drop.
//!
//! Postgres refuses to run as root, so when the tests run as root (CI, containers)
//! every Postgres command runs as the `postgres` user (`runuser -u postgres --`), in a
//! directory that user owns. When no server can be started the harness panics with
//! the reason: a test that needs Postgres never passes without one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A Postgres server owned by a test.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

/// The directory holding `initdb` and `pg_ctl`, or a panic that says how to get them.
/// Debian keeps them in `/usr/lib/postgresql/<version>/bin`, off the `PATH`.
pub fn postgres_bin_dir() -> PathBuf {
    let has_tools = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_tools(&dir) {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return dir;
    }
    if let Ok(out) = Command::new("which").arg("initdb").output()
        && out.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if let Some(dir) = std::fs::canonicalize(&path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|d| has_tools(d))
        {
            return dir;
        }
    }
    panic!(
        "PostgreSQL (initdb, pg_ctl) is not installed: these tests need a real Postgres. \
         Run scripts/test (it installs it with apt-get) or `apt-get install postgresql`."
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PostgresServer {
    /// Initialises a cluster and starts it on a free loopback port. Panics if it cannot.
    pub fn start() -> PostgresServer {
        let bin = postgres_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("showcase-pg-")
            .tempdir()
            .expect("create a temporary directory for Postgres");
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .output()
                .expect("run chown");
            assert!(
                out.status.success(),
                "cannot give the Postgres directory to the postgres user (does it exist?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut server = PostgresServer {
            bin,
            dir,
            port: 0,
            running: false,
        };
        let data = server.data_dir();
        let out = server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut last_err = String::new();
        for _ in 0..5 {
            server.port = cacheward_tests::free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start Postgres: {last_err}");
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// Runs a Postgres program, as the `postgres` user when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    fn try_start(&mut self) -> Result<(), String> {
        let data = self.data_dir();
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if out.status.success() {
            self.running = true;
            return Ok(());
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "pg_ctl start: {}{}\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: open connections are closed).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let out = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
            assert!(
                out.status.success(),
                "pg_ctl stop: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            self.running = false;
        }
    }

    /// Starts the server again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.try_start()
            .unwrap_or_else(|e| panic!("could not restart Postgres: {e}"));
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
    }
}
