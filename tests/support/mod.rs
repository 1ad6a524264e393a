//! Test harness: the simulator on 127.0.0.1:0, a temp dir with config, mapping and feeds, and
//! helpers to run jobs in-process or through the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use yampi_sync::pipeline::{self, RunOptions};
use yampi_sync::report::{RunReport, worst_exit};
use yampi_sync::sim::{
    Catalog, Faults, QueueSettings, SimConfig, SimLimits, Simulator, sample_catalog,
};

pub const TOKEN: &str = "tok-SECRET-7f3a9c";
pub const SECRET: &str = "key-SECRET-b41d02";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sim: Simulator,
    pub limits: SimLimits,
    pub window: Duration,
    /// Extra TOML lines for the job table.
    pub job_extra: String,
    /// The mapping file's text.
    pub mapping: String,
    /// The job's `source` table.
    pub source: String,
    /// The job's kind.
    pub kind: String,
    /// The job's schedule.
    pub schedule: String,
    /// The store's `max_retries` (a few tests want failures to come back at once).
    pub max_retries: u32,
}

pub fn fast_sim_config(limits: SimLimits, window: Duration) -> SimConfig {
    SimConfig {
        alias: "loja-teste".into(),
        user_token: TOKEN.into(),
        user_secret_key: SECRET.into(),
        window,
        limits,
        faults: Faults::default(),
    }
}

/// Generous limits in short windows: tests run fast and never see a 429 unless they ask for it.
pub fn roomy_limits() -> SimLimits {
    SimLimits {
        get_skus: 1000,
        get_products: 1000,
        default: 1000,
    }
}

pub const STOCK_MAPPING: &str = r#"
match = "sku"
key = "Código"
decimal = "comma"

[stock]
stocks = { "1" = "Saldo Loja", "2" = "Saldo CD" }
min_quantity = 0
missing = "keep"
"#;

impl Env {
    pub async fn start(catalog: Catalog) -> Env {
        Self::start_with(catalog, roomy_limits(), Duration::from_millis(500)).await
    }

    pub async fn start_with(catalog: Catalog, limits: SimLimits, window: Duration) -> Env {
        let sim = Simulator::start(fast_sim_config(limits, window), catalog)
            .await
            .expect("simulator starts");
        // Quick queues (a first push reads the stock exports): a test that wants them slower
        // sets its own.
        sim.set_queue_settings(QueueSettings {
            queue_secs: Duration::from_millis(100),
            ..QueueSettings::default()
        });
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("erp")).unwrap();
        Env {
            dir,
            sim,
            limits,
            window,
            job_extra: String::new(),
            mapping: STOCK_MAPPING.to_string(),
            source: r#"{ path = "erp/estoque-*.csv", settle_ms = 0 }"#.to_string(),
            kind: "stock".to_string(),
            schedule: "*/10 * * * *".to_string(),
            max_retries: 8,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes the config and mapping; credentials come from the environment of the process
    /// that reads it (in-process runs get literal values, see `config_text`).
    pub fn write_config(&self) -> PathBuf {
        let p = self.path("yampi-sync.toml");
        std::fs::write(&p, self.config_text(true)).unwrap();
        std::fs::write(self.path("stock.toml"), &self.mapping).unwrap();
        p
    }

    pub fn config_text(&self, literal_secrets: bool) -> String {
        let (token, secret) = if literal_secrets {
            (TOKEN.to_string(), SECRET.to_string())
        } else {
            (
                "${YS_TEST_TOKEN}".to_string(),
                "${YS_TEST_SECRET}".to_string(),
            )
        };
        format!(
            r#"state_dir = "{state}"
timezone = "America/Sao_Paulo"
language = "en"

[[store]]
name = "loja"
alias = "loja-teste"
base_url = "{base}"
user_token = "{token}"
user_secret_key = "{secret}"
timeout_secs = 5
max_retries = {max_retries}
queue_poll = "50ms"

[store.limits]
default = {d}
get_skus = {s}
get_products = {p}
window_ms = {w}

[[job]]
name = "estoque"
store = "loja"
kind = "{kind}"
schedule = "{schedule}"
source = {source}
mapping = "stock.toml"
{extra}
"#,
            state = self.state_dir().display(),
            base = self.sim.base_url(),
            d = self.limits.default,
            s = self.limits.get_skus,
            p = self.limits.get_products,
            w = self.window.as_millis(),
            extra = self.job_extra,
            source = self.source,
            kind = self.kind,
            schedule = self.schedule,
            max_retries = self.max_retries,
        )
    }

    /// Writes a feed file `erp/<name>` with a newer mtime than any before it.
    pub fn write_feed(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(&format!("erp/{name}"));
        std::fs::write(&p, content).unwrap();
        // Newest-file selection goes by mtime: make each new file strictly newer.
        let t = std::time::SystemTime::now() + Duration::from_millis(10 * next_seq());
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(t).unwrap();
        p
    }

    /// Runs every job once in-process; returns the exit code and the reports.
    pub async fn run(&self, opts: RunOptions) -> (i32, Vec<RunReport>) {
        let config = self.write_config();
        let settings = yampi_sync::config::load(&config, None).expect("valid config");
        let state = yampi_sync::state::StateStore::open(&settings.state_dir).expect("state");
        let clients = pipeline::clients(&settings).unwrap();
        let reports = pipeline::run_once(&settings, &state, &clients, &opts).await;
        (worst_exit(reports.iter().map(|r| r.exit_code)), reports)
    }

    pub async fn run_default(&self) -> (i32, RunReport) {
        let (code, mut reports) = self.run(RunOptions::default()).await;
        (code, reports.remove(0))
    }

    /// The real binary, with credentials in its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let config = self.path("yampi-sync.toml");
        std::fs::write(&config, self.config_text(false)).unwrap();
        std::fs::write(self.path("stock.toml"), &self.mapping).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_yampi-sync"));
        c.arg("--config")
            .arg(&config)
            .args(args)
            .env("YS_TEST_TOKEN", TOKEN)
            .env("YS_TEST_SECRET", SECRET)
            .env_remove("RUST_LOG");
        c
    }

    pub fn run_binary(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("binary runs")
    }

    /// Number of POST stocks/sync answered 200 for a product.
    pub fn applied_syncs(&self, product: u64) -> usize {
        let path = format!("/catalog/products/{product}/stocks/sync");
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(&path) && r.applied)
            .count()
    }

    /// The requests that are not reads, as "METHOD path".
    pub fn non_reads(&self) -> Vec<String> {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    pub fn writes(&self) -> usize {
        self.sim.count("POST", "/stocks/sync")
    }
}

fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A CSV feed (`;`, decimal comma) with every SKU of the catalog: quantities from `f`.
pub fn feed_for(catalog: &Catalog, f: impl Fn(u64, u64) -> (i64, i64)) -> String {
    let mut s = String::from("Código;Descrição;Saldo Loja;Saldo CD\n");
    for p in &catalog.products {
        for sku in &p.skus {
            let (a, b) = f(p.id, sku.id);
            s.push_str(&format!(
                "{};{};{};{}\n",
                sku.sku,
                sku.title.replace(';', ","),
                a,
                b
            ));
        }
    }
    s
}

/// The catalog used by most tests: 20 products × 3 SKUs, two stocks.
pub fn small_catalog() -> Catalog {
    sample_catalog(20, 3, 11)
}

pub fn all_skus(catalog: &Catalog) -> Vec<(u64, u64, String)> {
    catalog
        .products
        .iter()
        .flat_map(|p| p.skus.iter().map(move |s| (p.id, s.id, s.sku.clone())))
        .collect()
}

pub fn read_all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// A spawned binary that is killed when the test ends, even when it fails: no stray daemons.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub mod daemon;
pub mod prices;

/// Fails unless every SKU of `catalog` holds `f(product, sku)` in stocks 1 and 2.
#[track_caller]
pub fn assert_stock(env: &Env, catalog: &Catalog, f: impl Fn(u64, u64) -> (i64, i64)) {
    for (p, s, code) in all_skus(catalog) {
        let (a, b) = f(p, s);
        assert_eq!(env.sim.stock(s, 1), Some(a), "{code} stock 1");
        assert_eq!(env.sim.stock(s, 2), Some(b), "{code} stock 2");
    }
}

/// Fails unless every SKU of `catalog` holds the first of `f(product, sku)` in stock 1.
#[track_caller]
pub fn assert_stock_1(env: &Env, catalog: &Catalog, f: impl Fn(u64, u64) -> (i64, i64)) {
    for (p, s, code) in all_skus(catalog) {
        assert_eq!(env.sim.stock(s, 1), Some(f(p, s).0), "{code} stock 1");
    }
}

/// The same rows in reverse order under the same header: a new file with the same values.
pub fn rows_reversed(feed: &str) -> String {
    let mut lines: Vec<&str> = feed.lines().collect();
    lines[1..].reverse();
    lines.join("\n") + "\n"
}

/// `feed` without the row whose key is `key`.
pub fn without_row(feed: &str, key: &str) -> String {
    feed.lines()
        .filter(|l| !l.starts_with(&format!("{key};")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// What a process printed: its stdout, then its stderr.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Fails unless the process exited with `code`, showing what it printed.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", output_text(out));
}

/// Looks at `ready` every `every` until it holds; fails naming `what` once `limit` has passed.
pub async fn poll_until(what: &str, limit: Duration, every: Duration, ready: impl FnMut() -> bool) {
    poll_until_showing(what, limit, every, ready, String::new).await
}

/// As `poll_until`, with `context()` added to the failure.
pub async fn poll_until_showing(
    what: &str,
    limit: Duration,
    every: Duration,
    mut ready: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let t0 = std::time::Instant::now();
    while !ready() {
        assert!(
            t0.elapsed() < limit,
            "timed out waiting for {what}{}",
            context()
        );
        tokio::time::sleep(every).await;
    }
}

impl Running {
    /// SIGKILL (no cleanup, no flush), then reaps it; a child that already ended is only reaped.
    pub fn kill_hard(&mut self) {
        if self.0.try_wait().expect("the child's status").is_none() {
            self.0.kill().expect("SIGKILL");
        }
        self.0.wait().expect("the child is reaped");
    }
}

/// One more `[[job]]` table on the env's store (for `Env::job_extra`); `schedule` is optional,
/// as for one-shot jobs.
pub fn job_table(
    name: &str,
    kind: &str,
    glob: &str,
    mapping: &str,
    schedule: Option<&str>,
) -> String {
    let schedule = schedule.map_or(String::new(), |s| format!("schedule = \"{s}\"\n"));
    format!(
        "\n[[job]]\nname = \"{name}\"\nstore = \"loja\"\nkind = \"{kind}\"\n{schedule}\
         source = {{ path = \"{glob}\", settle_ms = 0 }}\nmapping = \"{mapping}\"\n"
    )
}

/// What an in-process run needs, opened from the config file at `path`.
pub struct Opened {
    pub settings: yampi_sync::config::Settings,
    pub state: yampi_sync::state::StateStore,
    pub clients: pipeline::Clients,
}

pub fn open_config(path: &Path) -> Opened {
    let settings = yampi_sync::config::load(path, None).expect("valid config");
    let state = yampi_sync::state::StateStore::open(&settings.state_dir).expect("state");
    let clients = pipeline::clients(&settings).unwrap();
    Opened {
        settings,
        state,
        clients,
    }
}

impl Opened {
    /// Runs every job once; returns the exit code and the reports.
    pub async fn run(&self, opts: &RunOptions) -> (i32, Vec<RunReport>) {
        let reports = pipeline::run_once(&self.settings, &self.state, &self.clients, opts).await;
        (worst_exit(reports.iter().map(|r| r.exit_code)), reports)
    }
}

impl Env {
    /// Writes the config and mapping and opens them as an in-process run would.
    pub fn open(&self) -> Opened {
        open_config(&self.write_config())
    }
}

/// A SKU "NOVO-1" (id 999001, a copy of the first SKU) created in the store after the first
/// scan, and a feed `estoque-2.csv` with every SKU of `catalog` by `qty` plus NOVO-1 at (4, 2).
/// The request log is cleared, so it shows only what the next run asks.
pub fn new_sku_and_its_feed(env: &Env, catalog: &Catalog, qty: impl Fn(u64, u64) -> (i64, i64)) {
    let mut new_sku = catalog.products[0].skus[0].clone();
    new_sku.id = 999_001;
    new_sku.sku = "NOVO-1".into();
    env.sim.add_sku(new_sku);
    env.sim.clear_requests();
    let mut feed = feed_for(catalog, qty);
    feed.push_str("NOVO-1;novo;4;2\n");
    env.write_feed("estoque-2.csv", &feed);
}

/// A loopback port that was free a moment ago (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `[publish]` section serving on `port` under `/arquivos`.
pub fn publish_section(port: u16) -> String {
    format!(
        "\n[publish]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}/arquivos\"\n"
    )
}

/// The SKU export header the env's state store keeps for store "loja", if any.
pub fn kept_sku_header(env: &Env) -> Option<yampi_sync::state::StoredHeader> {
    let state = yampi_sync::state::StateStore::open(&env.state_dir()).expect("state");
    state.sku_header("loja").unwrap()
}
