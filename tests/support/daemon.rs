//! The daemon through the real binary: spawning it with its log in a file, signals, bounded
//! waits that show the log when they fail, and the systemd notification socket.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use yampi_sync::sim::Catalog;

use super::{Env, Running, feed_for, poll_until_showing};

/// The daemon tests' feed quantities.
pub fn qty(_p: u64, sku: u64) -> (i64, i64) {
    ((sku % 11) as i64 + 2, (sku % 3) as i64)
}

/// A stock job scheduled every second on `catalog`, its first feed (by `qty`) written.
pub async fn every_second_env(catalog: &Catalog) -> Env {
    let mut env = Env::start(catalog.clone()).await;
    env.schedule = "* * * * * *".into();
    env.write_feed("estoque-1.csv", &feed_for(catalog, qty));
    env
}

/// Sends `sig` (as `kill` spells it: "-TERM", "-HUP") to the child.
pub fn signal(child: &Running, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// The daemon's stderr so far (empty before it wrote any).
pub fn log_of(env: &Env) -> String {
    std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default()
}

/// Waits (bounded by `secs`) until `f` holds; a timeout shows the daemon's log.
pub async fn wait_until(what: &str, secs: u64, env: &Env, f: impl FnMut() -> bool) {
    poll_until_showing(
        what,
        Duration::from_secs(secs),
        Duration::from_millis(10),
        f,
        || format!("; the daemon's log:\n{}", log_of(env)),
    )
    .await
}

/// Waits (bounded by `secs`) for the child to exit; returns its exit code.
pub fn wait_exit(child: &mut Running, secs: u64) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("the daemon did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemon (the binary with `args`, no `--run-once`) with its stderr in `daemon.log`.
pub fn spawn_daemon(env: &Env, args: &[&str], extra_env: &[(&str, &str)]) -> Running {
    let log = std::fs::File::create(env.path("daemon.log")).unwrap();
    let mut c = env.command(args);
    c.stdout(Stdio::null()).stderr(log);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    Running(c.spawn().unwrap())
}

/// A `NOTIFY_SOCKET` in the env's dir, and every notification read from it so far.
pub struct Notifications {
    socket: UnixDatagram,
    pub path: PathBuf,
    pub received: String,
}

impl Notifications {
    /// Binds the socket; reads wait at most 20 s.
    pub fn bind(env: &Env) -> Notifications {
        let path = env.path("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Notifications {
            socket,
            path,
            received: String::new(),
        }
    }

    /// The value for the daemon's `NOTIFY_SOCKET`.
    pub fn env_value(&self) -> String {
        self.path.display().to_string()
    }

    /// Reads until what was received contains `needle`; fails, with the daemon's log, when a
    /// read times out first.
    pub fn wait_for(&mut self, needle: &str, env: &Env) {
        if let Err(e) = self.read_until(needle) {
            panic!("no {needle} ({e}); the daemon's log:\n{}", log_of(env));
        }
    }

    /// Reads until what was received contains `needle`, or a read fails (its timeout passed).
    pub fn read_until(&mut self, needle: &str) -> std::io::Result<()> {
        let mut buf = [0u8; 4096];
        while !self.received.contains(needle) {
            let n = self.socket.recv(&mut buf)?;
            self.received.push_str(&String::from_utf8_lossy(&buf[..n]));
            self.received.push('\n');
        }
        Ok(())
    }

    /// Everything that arrives from now until nothing has for `quiet` (not added to `received`).
    pub fn read_rest(&mut self, quiet: Duration) -> String {
        self.socket.set_read_timeout(Some(quiet)).unwrap();
        let mut buf = [0u8; 4096];
        let mut after = String::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            after.push_str(&String::from_utf8_lossy(&buf[..n]));
            after.push('\n');
        }
        after
    }
}
