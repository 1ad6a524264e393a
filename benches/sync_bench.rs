//! Benchmarks of the stock sync (`cargo bench`): numbers, not pass/fail.
//!
//! (a) read + map + diff of a 1,000,000-row CSV and a 100,000-row XLSX: seconds and peak RSS.
//!     Each case runs in a child process of its own so its peak RSS (VmHWM) is its own.
//! (b) an end-to-end sync on the simulator with Yampi's documented limits (60 requests per window
//!     for writes): write requests per changed product, and wall time divided by the rate-limit
//!     lower bound. The window is 1 s instead of 60 s (`--window-ms` to change it); the ratio does
//!     not depend on the window length.
//!
//! (c) price requests planned for N changed SKUs against the lower bound.
//! (d) an idle daemon with six jobs scheduled: RSS and CPU over a few minutes (`--minutes`).
//! (e) the state dir's size over 3,000 runs of an unchanged feed (sampled every 1,000).
//! (f) 70,000 price rows in the SKU-template layout written as two `.xls` files and read back:
//!     seconds and peak RSS (target ≤ 2 s, ≤ 300 MB).
//! (g) many jobs: `status` and the daemon's time to READY for `--jobs N` (default 1,000).
//! (h) 30,000 changed prices through `route = "api"` and through an import (`--window-ms`, default
//!     100: Yampi's 60 s windows scaled 600×). Queues take their lines at an assumed real rate
//!     scaled by the same k (`--export-lines-per-sec`, default 833: case (i)'s 100,000 SKUs in
//!     120 s; `--import-lines-per-sec`, default 20: the `auto` route's assumption), or a fixed
//!     time each (`--queue-ms`, the old model). Prints the scaled wall times and an estimate at
//!     the real limits (requests at 60/min, real queue time, CPU once). `--routes import` runs
//!     one route; `RUST_LOG=yampi_sync=debug` logs the import's stage timings.
//!
//! (i) the first index of a 100,000-SKU store, paged vs through the SKU export, with Yampi's
//!     limits (30 SKU pages, 60 other requests per window) in a window scaled down by
//!     k = 60 s / `--window-ms`, the simulator's queue time (`--queue-secs`, default 120 s of
//!     real time) and the queue poll (10 s) scaled by the same k; wall × k is the real-time
//!     equivalent of the paged scan. The export's CPU work (the simulator writing the file, the
//!     client reading it) does not shrink with the window, so wall × k overstates it; the export
//!     is also run with no queue time, and its real-time estimate is that wall (CPU and requests)
//!     plus the real queue time plus one real poll interval (10 s). Target: ≤ 5 minutes.
//!
//! `cargo bench -- --case csv|csv-all|xlsx|e2e|prices|idle|runs|xls|jobs|import|index` runs one case;
//! each case writes the inputs it reads when they are missing (benches/sync_bench/inputs.rs).

#[path = "sync_bench/inputs.rs"]
mod inputs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use yampi_sync::index::SkuIndex;
use yampi_sync::mapping::{self, Mapping};
use yampi_sync::model::{IndexedSku, Pushed};
use yampi_sync::pipeline::feed::read_stock_feed;
use yampi_sync::pipeline::plan::{PlanInput, plan_stock};
use yampi_sync::pipeline::{self, RunOptions};
use yampi_sync::sim::{self, Faults, SimConfig, SimLimits, Simulator};

const CSV_ROWS: u64 = 1_000_000;
const XLSX_ROWS: u64 = 100_000;

const MAPPING: &str = r#"
match = "sku"
key = "Código"
decimal = "comma"
[stock]
stocks = { "1" = "Saldo Loja", "2" = "Saldo CD" }
"#;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn sku(i: u64) -> IndexedSku {
    IndexedSku {
        id: 1_000_000 + i,
        product_id: 10_000 + i / 3,
        sku: format!("SKU-{i:07}"),
        erp_id: None,
        barcode: None,
        price_cost: None,
        price_sale: None,
        price_discount: None,
        total_in_stock: Some(5),
        quantity_managed: Some(true),
        updated_at: None,
        title: None,
        variation: None,
    }
}

fn mapping() -> Mapping {
    let mut errors = Vec::new();
    mapping::parse(MAPPING, Path::new("bench.toml"), &mut errors).expect("valid mapping")
}

/// Reads, matches and diffs `path` against a store of the SKUs `store_every`-th keys.
fn read_map_diff(path: &Path, rows: u64, store_every: u64) {
    let index = SkuIndex {
        skus: (0..rows)
            .step_by(store_every as usize)
            .map(|i| (1_000_000 + i, sku(i)))
            .collect(),
        ..SkuIndex::default()
    };
    // Half the store's SKUs were pushed before with the values the feed has now.
    let pushed: HashMap<(u64, u64), Pushed> = index
        .skus
        .keys()
        .filter(|id| (*id - 1_000_000) % (2 * store_every) == 0)
        .flat_map(|id| {
            let i = id - 1_000_000;
            [
                (
                    (*id, 1),
                    Pushed {
                        quantity: (i % 50) as i64,
                        min_quantity: 0,
                    },
                ),
                (
                    (*id, 2),
                    Pushed {
                        quantity: (i % 7) as i64,
                        min_quantity: 0,
                    },
                ),
            ]
        })
        .collect();
    let m = mapping();
    let stock = m.stock.clone().unwrap();
    let rss_setup = peak_rss_mb();
    let t0 = Instant::now();
    let lookup = index.lookup(m.match_field);
    let feed = read_stock_feed(path, None, None, &m, &lookup).expect("readable");
    let t_read = t0.elapsed();
    let plan = plan_stock(&PlanInput {
        feed: &feed,
        skus: &index.skus,
        lookup: &lookup,
        match_field: m.match_field,
        pushed: &pushed,
        mapping: &stock,
        default_stock: 1,
        single_store_stock: false,
        store: &HashMap::new(),
        full: false,
    });
    let total = t0.elapsed();
    println!(
        "  {} rows read, {} matched, {} unmatched, {} products to write, {} SKU×stock changes",
        feed.rows_read,
        feed.rows.len(),
        feed.unmatched.len(),
        plan.products.len(),
        plan.entries()
    );
    println!(
        "  read+map {:.3} s, diff {:.3} s, total {:.3} s; peak RSS {:.0} MB (setup alone {:.0} MB)",
        t_read.as_secs_f64(),
        (total - t_read).as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_mb(),
        rss_setup
    );
}

fn data_dir() -> PathBuf {
    let d = std::env::temp_dir().join("yampi-sync-bench");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The input `name` for a case, generated first when missing. Generation runs in a child
/// process (`--write-input NAME ROWS`), so the workbook writer's memory does not count in the
/// case's peak RSS.
fn input(name: &str, rows: u64) -> PathBuf {
    let path = data_dir().join(name);
    if !path.exists() {
        eprintln!("writing the bench input {} ({rows} rows)…", path.display());
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--write-input", name, &rows.to_string()])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "writing the bench input {name} failed: {status}"
        );
    }
    path
}

fn case_csv(store_every: u64) {
    let rows = CSV_ROWS;
    let path = input(inputs::CSV, rows);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "(a) CSV: {rows} rows ({:.0} MB), store of {} SKUs",
        size as f64 / 1e6,
        rows / store_every
    );
    read_map_diff(&path, rows, store_every);
}

fn case_xlsx() {
    let rows = XLSX_ROWS;
    let path = input(inputs::XLSX, rows);
    println!("(a) XLSX: {rows} rows, store of {rows} SKUs");
    read_map_diff(&path, rows, 1);
}

fn case_e2e(window: Duration) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let catalog = sim::sample_catalog(200, 3, 21);
        let limits = SimLimits::default(); // 30 / 30 / 60 per window, as documented
        let sim = Simulator::start(
            SimConfig {
                alias: "bench".into(),
                user_token: "bench-token".into(),
                user_secret_key: "bench-secret".into(),
                window,
                limits,
                faults: Faults { latency: Duration::from_millis(5), ..Faults::default() },
            },
            catalog.clone(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("erp")).unwrap();
        std::fs::write(dir.path().join("stock.toml"), MAPPING).unwrap();
        let config = dir.path().join("yampi-sync.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{}\"\n[[store]]\nname = \"b\"\nalias = \"bench\"\nbase_url = \"{}\"\nuser_token = \"bench-token\"\nuser_secret_key = \"bench-secret\"\nqueue_poll = \"100ms\"\n[store.limits]\nwindow_ms = {}\n[[job]]\nname = \"estoque\"\nkind = \"stock\"\nsource = {{ path = \"erp/*.csv\", settle_ms = 0 }}\nmapping = \"stock.toml\"\nmax_zeroed_pct = 100\n",
                dir.path().join("state").display(),
                sim.base_url(),
                window.as_millis()
            ),
        )
        .unwrap();
        let feed = |changed: &dyn Fn(u64) -> bool| {
            let mut s = String::from("Código;Saldo Loja;Saldo CD\n");
            for p in &catalog.products {
                for k in &p.skus {
                    let bump = if changed(k.id) { 100 } else { 0 };
                    s.push_str(&format!("{};{};{}\n", k.sku, k.id % 11 + bump, k.id % 5));
                }
            }
            s
        };
        let settings = yampi_sync::config::load(&config, None).unwrap();
        let state = yampi_sync::state::StateStore::open(&settings.state_dir).unwrap();
        let clients = pipeline::clients(&settings).unwrap();
        std::fs::write(dir.path().join("erp/1.csv"), feed(&|_| false)).unwrap();
        let first = pipeline::run_once(&settings, &state, &clients, &RunOptions::default()).await;
        assert_eq!(first[0].exit_code, 0, "{}", first[0].summary_line());

        // 150 of the 200 products change: 1 to 3 SKUs each.
        let changed_products: Vec<u64> = catalog.products.iter().take(150).map(|p| p.id).collect();
        let changed_skus: Vec<u64> = catalog
            .products
            .iter()
            .take(150)
            .flat_map(|p| p.skus.iter().take(1 + (p.id % 3) as usize).map(|s| s.id))
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("erp/2.csv"), feed(&|id| changed_skus.contains(&id))).unwrap();
        sim.clear_requests();
        let t0 = Instant::now();
        let second = pipeline::run_once(&settings, &state, &clients, &RunOptions::default()).await;
        let wall = t0.elapsed();
        let r = &second[0];
        assert_eq!(r.exit_code, 0, "{}", r.summary_line());
        let writes = sim.count("POST", "/stocks/sync");
        // Every request of the run in the writes' group (the general 60-per-window bucket).
        let default_group = sim
            .requests()
            .iter()
            .filter(|q| !(q.method == "GET" && (q.path.contains("/catalog/skus") || q.path.contains("/catalog/products"))))
            .count() as u64;
        let l = u64::from(limits.default);
        // A fixed window admits `limit` requests at once: the fastest legal schedule needs
        // ceil(R / limit) - 1 full windows.
        let bound = window.mul_f64((default_group.div_ceil(l) - 1) as f64);
        let throughput_bound = window.mul_f64(default_group as f64 / l as f64);
        println!(
            "(b) end-to-end: {} changed SKUs in {} products, limits {}/{}/{} per {:?} window",
            changed_skus.len(),
            changed_products.len(),
            limits.get_skus,
            limits.get_products,
            limits.default,
            window
        );
        println!(
            "  {writes} stocks/sync requests → {:.2} write requests per changed product; {default_group} requests in the 60/window group",
            writes as f64 / changed_products.len() as f64
        );
        println!(
            "  wall {:.3} s; fixed-window lower bound {:.3} s → ratio {:.3}; (requests ÷ rate = {:.3} s → ratio {:.3}); 429s: {}",
            wall.as_secs_f64(),
            bound.as_secs_f64(),
            wall.as_secs_f64() / bound.as_secs_f64(),
            throughput_bound.as_secs_f64(),
            wall.as_secs_f64() / throughput_bound.as_secs_f64(),
            sim.count_status(429)
        );
        sim.shutdown().await;
    });
}

/// Price requests planned for N changed SKUs, against the lower bound (a product whose changed
/// SKUs share their new prices counts once, every SKU of any other product once).
fn case_prices() {
    use yampi_sync::pipeline::feed::read_price_feed;
    use yampi_sync::pipeline::price_plan::{PricePlanInput, lower_bound, plan_prices};
    let n: u64 = 30_000;
    let index = SkuIndex {
        skus: (0..n)
            .map(|i| {
                let mut s = sku(i);
                s.price_sale = Some(Decimal::from(100));
                s.price_cost = Some(Decimal::from(40));
                (s.id, s)
            })
            .collect(),
        ..SkuIndex::default()
    };
    let path = input(inputs::PRICES, n);
    let mut errors = Vec::new();
    let m = mapping::parse(
        "match = \"sku\"\nkey = \"Código\"\ndecimal = \"comma\"\n[price]\nprice_sale = \"Preço\"\n",
        Path::new("bench.toml"),
        &mut errors,
    )
    .expect("valid mapping");
    let lookup = index.lookup(m.match_field);
    let t0 = Instant::now();
    let feed = read_price_feed(&path, None, None, &m, &lookup).expect("readable");
    let plan = plan_prices(&PricePlanInput {
        feed: &feed,
        skus: &index.skus,
        pushed: &HashMap::new(),
        mapping: m.price.as_ref().unwrap(),
        file: "prices.csv",
        full: false,
    });
    let elapsed = t0.elapsed();
    let bound = lower_bound(&plan);
    let batch = plan
        .ops
        .iter()
        .filter(|o| {
            matches!(
                o,
                yampi_sync::pipeline::price_plan::PriceOp::BatchUpdate { .. }
            )
        })
        .count();
    println!("(c) prices: {n} changed SKUs in {} products", n / 3);
    println!(
        "  {} write requests ({batch} multi-SKU and {} single-SKU batch-update-skus) vs lower bound {bound} → ratio {:.3}; planned in {:.3} s",
        plan.ops.len(),
        plan.ops.len() - batch,
        plan.ops.len() as f64 / bound as f64,
        elapsed.as_secs_f64()
    );
}

/// Writes a config for `jobs` stock jobs against `base_url` into `dir`; returns its path.
fn daemon_config(dir: &Path, base_url: &str, jobs: usize, schedule: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("erp")).unwrap();
    std::fs::write(dir.join("stock.toml"), MAPPING).unwrap();
    let mut text = format!(
        "state_dir = \"{}\"\n[[store]]\nname = \"b\"\nalias = \"bench\"\nbase_url = \"{base_url}\"\nuser_token = \"bench-token\"\nuser_secret_key = \"bench-secret\"\n[store.limits]\nwindow_ms = 1000\n",
        dir.join("state").display()
    );
    for j in 0..jobs {
        text.push_str(&format!(
            "[[job]]\nname = \"estoque-{j}\"\nkind = \"stock\"\nschedule = \"{schedule}\"\nsource = {{ path = \"erp/*.csv\", settle_ms = 0 }}\nmapping = \"stock.toml\"\n"
        ));
    }
    let path = dir.join("yampi-sync.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    path
}

fn sim_config(window: Duration) -> SimConfig {
    SimConfig {
        alias: "bench".into(),
        user_token: "bench-token".into(),
        user_secret_key: "bench-secret".into(),
        window,
        limits: SimLimits::default(),
        faults: Faults::default(),
    }
}

/// (d) An idle daemon with several jobs scheduled: RSS and CPU over `minutes`.
fn case_idle(minutes: u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let catalog = sim::sample_catalog(100, 3, 7);
        let sim = Simulator::start(sim_config(Duration::from_secs(1)), catalog.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Six jobs, each once a day at midnight: the daemon sits idle between runs.
        let config = daemon_config(dir.path(), &sim.base_url(), 6, "0 0 0 * * *");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yampi-sync"))
            .arg("--config")
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let proc_file = |name: &str| std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap_or_default();
        let cpu_ticks = || {
            let stat = proc_file("stat");
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
            fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
                + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        };
        let rss_kb = || {
            proc_file("status")
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (t0, c0) = (Instant::now(), cpu_ticks());
        let mut max_rss = 0;
        while t0.elapsed() < Duration::from_secs(minutes * 60) {
            max_rss = max_rss.max(rss_kb());
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let ticks = cpu_ticks() - c0;
        let secs = t0.elapsed().as_secs_f64();
        // Clock ticks are 1/100 s on Linux.
        println!(
            "(d) idle daemon, 6 jobs scheduled, {minutes} min: RSS {:.1} MB (max), CPU {:.3} % ({ticks} ticks in {secs:.0} s)",
            max_rss as f64 / 1024.0,
            ticks as f64 / 100.0 / secs * 100.0
        );
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let _ = child.wait();
        sim.shutdown().await;
    });
}

/// (e) The state dir after 1,000 runs of an unchanged feed.
fn case_runs(n: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let catalog = sim::sample_catalog(100, 3, 7);
        let sim = Simulator::start(sim_config(Duration::from_millis(100)), catalog.clone()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = daemon_config(dir.path(), &sim.base_url(), 1, "0 */10 * * * *");
        let mut feed = String::from("Código;Saldo Loja;Saldo CD\n");
        for p in &catalog.products {
            for k in &p.skus {
                feed.push_str(&format!("{};{};{}\n", k.sku, k.id % 9, 1));
            }
        }
        std::fs::write(dir.path().join("erp/1.csv"), feed).unwrap();
        let settings = yampi_sync::config::load(&config, None).unwrap();
        let state = yampi_sync::state::StateStore::open(&settings.state_dir).unwrap();
        let clients = pipeline::clients(&settings).unwrap();
        let size = |p: &Path| -> u64 {
            fn walk(p: &Path) -> u64 {
                std::fs::read_dir(p)
                    .map(|d| {
                        d.flatten()
                            .map(|e| {
                                let m = e.metadata().unwrap();
                                if m.is_dir() { walk(&e.path()) } else { m.len() }
                            })
                            .sum()
                    })
                    .unwrap_or(0)
            }
            walk(p)
        };
        let t0 = Instant::now();
        let mut sizes = Vec::new();
        for i in 1..=n {
            let r = pipeline::run_once(&settings, &state, &clients, &RunOptions::default()).await;
            assert!(r[0].exit_code == 0, "{}", r[0].summary_line());
            if i == 1 || i % 1000 == 0 {
                state.flush().await.unwrap();
                sizes.push(format!("{i}: {:.2} MB", size(&settings.state_dir) as f64 / 1e6));
            }
        }
        println!(
            "(e) {n} runs of an unchanged feed in {:.1} s (max_run_records = {}): state dir after run {}",
            t0.elapsed().as_secs_f64(),
            settings.max_run_records,
            sizes.join(", ")
        );
        sim.shutdown().await;
    });
}

/// (f) 70,000 rows in the SKU-template layout (12 columns) written as `.xls` files of at most
/// 65,535 rows each (every file is read back and compared by the writer), then read back as
/// export tables.
fn case_xls() {
    use yampi_sync::export_file::read_table;
    use yampi_sync::xls::{MAX_DATA_ROWS, XlsCell, chunks, write_xls};
    const ROWS: usize = 70_000;
    let header: Vec<String> = yampi_sync::export_file::columns::SKU_TEMPLATE
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cents = |n: usize| XlsCell::Number(Decimal::new(n as i64, 2));
    let rows: Vec<Vec<XlsCell>> = (0..ROWS)
        .map(|i| {
            vec![
                XlsCell::Text(format!("{}", 1_000_000 + i)),
                XlsCell::Text(format!("{}", 10_000 + i / 3)),
                XlsCell::Text(format!("SKU-{i:07}")),
                XlsCell::Text(format!("Camiseta Básica {}", i / 3)),
                XlsCell::Text(format!("Cor: Azul, Tamanho: {}", ["P", "M", "G"][i % 3])),
                cents(4_000 + i % 1_000),
                cents(9_990 + i % 1_000),
                cents(8_990 + i % 1_000),
                XlsCell::Number(Decimal::new(250, 3)),
                XlsCell::Number(Decimal::from(5)),
                XlsCell::Number(Decimal::from(30)),
                XlsCell::Number(Decimal::from(40)),
            ]
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let rss_setup = peak_rss_mb();
    let started = Instant::now();
    let mut paths = Vec::new();
    for (n, range) in chunks(ROWS, MAX_DATA_ROWS).into_iter().enumerate() {
        let path = dir.path().join(format!("prices-{n}.xls"));
        write_xls(&path, "skus", &header, &rows[range]).unwrap();
        paths.push(path);
    }
    let write = started.elapsed();
    let started = Instant::now();
    let mut read_rows = 0;
    for path in &paths {
        let table = read_table(&std::fs::read(path).unwrap(), &path.display().to_string()).unwrap();
        read_rows += table.rows.len();
    }
    let read = started.elapsed();
    assert_eq!(read_rows, ROWS);
    println!(
        "(f) xls, {ROWS} rows × 12 columns in {} files: write (with read-back check) {:.3} s, read {:.3} s; peak RSS {:.0} MB (setup alone {:.0} MB)",
        paths.len(),
        write.as_secs_f64(),
        read.as_secs_f64(),
        peak_rss_mb(),
        rss_setup
    );
}

/// (g) The first index of a 100,000-SKU store: paged, then through the SKU export.
fn case_index(window: Duration, queue_real_secs: f64) {
    const SKUS: usize = 100_000;
    let k = 60.0 / window.as_secs_f64();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let catalog = sim::sample_catalog(SKUS / 4, 4, 31);
        let limits = SimLimits::default(); // 30 / 30 / 60 per window, as documented
        let sim = Simulator::start(
            SimConfig {
                alias: "bench".into(),
                user_token: "bench-token".into(),
                user_secret_key: "bench-secret".into(),
                window,
                limits,
                faults: Faults::default(),
            },
            catalog,
        )
        .await
        .unwrap();
        sim.set_queue_settings(sim::QueueSettings {
            queue_secs: Duration::from_secs_f64(queue_real_secs / k),
            ..sim::QueueSettings::default()
        });
        let poll = Duration::from_secs_f64((10.0 / k).max(0.05));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("yampi-sync.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{}\"\n[[store]]\nname = \"b\"\nalias = \"bench\"\nbase_url = \"{}\"\nuser_token = \"bench-token\"\nuser_secret_key = \"bench-secret\"\nqueue_poll = \"{}ms\"\n[store.limits]\nwindow_ms = {}\n",
                dir.path().join("state").display(),
                sim.base_url(),
                poll.as_millis(),
                window.as_millis()
            ),
        )
        .unwrap();
        let settings = yampi_sync::config::load(&config, None).unwrap();
        let client = yampi_sync::shop::ShopClient::new(settings.stores[0].clone()).unwrap();
        println!(
            "(g) first index of a {SKUS}-SKU store; window {:?} (k = {k:.0}), export queue {:.1} s ({queue_real_secs:.0} s real), poll {:?}",
            window,
            queue_real_secs / k,
            poll
        );
        let mut export_wall = Duration::ZERO;
        for (name, export) in [("paged", false), ("export", true), ("export, no queue time", true)] {
            if name == "export, no queue time" {
                sim.set_queue_settings(sim::QueueSettings {
                    queue_secs: Duration::ZERO,
                    ..sim::QueueSettings::default()
                });
            }
            let state =
                yampi_sync::state::StateStore::open(&dir.path().join(format!("state-{name}")))
                    .unwrap();
            sim.clear_requests();
            let aliases = yampi_sync::exports::ExportAliases::default();
            let scan = if export {
                yampi_sync::index::Scan::Export {
                    above: yampi_sync::config::DEFAULT_INDEX_EXPORT_ABOVE,
                    wait: yampi_sync::exports::Wait {
                        timeout: Duration::from_secs(3_600),
                        poll_every: poll,
                    },
                    aliases: &aliases,
                }
            } else {
                yampi_sync::index::Scan::Paged(yampi_sync::mapping::MatchField::Sku)
            };
            let t0 = Instant::now();
            let idx = yampi_sync::index::refresh_with(&client, &state, true, scan, |_, _| {})
                .await
                .unwrap();
            let wall = t0.elapsed();
            assert_eq!(idx.skus.len(), SKUS);
            println!(
                "  {name}: {} SKUs, {} requests ({} SKU pages), wall {:.2} s",
                idx.skus.len(),
                sim.requests().len(),
                sim.count("GET", "/catalog/skus") - sim.count("GET", "/catalog/skus/export"),
                wall.as_secs_f64(),
            );
            match name {
                "paged" => println!(
                    "    real-time equivalent (wall × k) {:.1} min",
                    wall.as_secs_f64() * k / 60.0
                ),
                "export" => export_wall = wall,
                _ => {
                    let real = wall.as_secs_f64() + queue_real_secs + 10.0;
                    println!(
                        "    export real-time estimate: {:.1} s of work + {queue_real_secs:.0} s queue + 10 s poll = {:.1} min ({}); the scaled run took {:.2} s, × k = {:.1} min as an upper bound",
                        wall.as_secs_f64(),
                        real / 60.0,
                        if real <= 300.0 { "target ≤ 5 min: met" } else { "target ≤ 5 min: NOT met" },
                        export_wall.as_secs_f64(),
                        export_wall.as_secs_f64() * k / 60.0
                    );
                }
            }
        }
        sim.shutdown().await;
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let window = Duration::from_millis(
        arg("--window-ms")
            .and_then(|w| w.parse().ok())
            .unwrap_or(1000),
    );
    if let Some(name) = arg("--write-input") {
        let rows = args
            .last()
            .and_then(|r| r.parse().ok())
            .expect("--write-input NAME ROWS");
        inputs::ensure(&data_dir(), &name, rows);
        return;
    }
    if let Some(case) = arg("--case") {
        match case.as_str() {
            "csv" => case_csv(10),
            "csv-all" => case_csv(1),
            "xlsx" => case_xlsx(),
            "e2e" => case_e2e(window),
            "prices" => case_prices(),
            "idle" => case_idle(arg("--minutes").and_then(|m| m.parse().ok()).unwrap_or(3)),
            "runs" => case_runs(arg("--runs").and_then(|n| n.parse().ok()).unwrap_or(3000)),
            "xls" => case_xls(),
            "jobs" => case_jobs(arg("--jobs").and_then(|n| n.parse().ok()).unwrap_or(1000)),
            "import" => case_import(
                Duration::from_millis(
                    arg("--window-ms")
                        .and_then(|w| w.parse().ok())
                        .unwrap_or(100),
                ),
                match arg("--queue-ms").and_then(|q| q.parse().ok()) {
                    Some(ms) => QueueModel::Fixed(Duration::from_millis(ms)),
                    None => QueueModel::PerLine {
                        export_lines_per_sec: arg("--export-lines-per-sec")
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(EXPORT_LINES_PER_SEC),
                        import_lines_per_sec: arg("--import-lines-per-sec")
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(yampi_sync::pipeline::import::ASSUMED_LINES_PER_SEC as f64),
                    },
                },
                arg("--routes").unwrap_or_else(|| "api,import".into()),
            ),
            "index" => case_index(
                window,
                arg("--queue-secs")
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(120.0),
            ),
            other => {
                eprintln!("unknown case {other}");
                std::process::exit(2);
            }
        }
        return;
    }
    // Each case in its own process, so peak RSS is per case.
    let exe = std::env::current_exe().unwrap();
    for case in [
        "csv", "csv-all", "xlsx", "e2e", "prices", "runs", "xls", "jobs", "import", "index", "idle",
    ] {
        let status = std::process::Command::new(&exe)
            .args([
                "--case",
                case,
                "--window-ms",
                &window.as_millis().to_string(),
            ])
            .status()
            .unwrap();
        if !status.success() {
            eprintln!("case {case} failed: {status}");
        }
    }
}

/// (g) Many jobs (an agency's server): `status` (first and second call) and the time until the
/// daemon says READY, for `n` jobs with one run record each.
fn case_jobs(n: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let catalog = sim::sample_catalog(10, 1, 7);
        let sim = Simulator::start(sim_config(Duration::from_secs(1)), catalog)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = daemon_config(dir.path(), &sim.base_url(), n, "0 0 0 1 1 *");
        {
            let settings = yampi_sync::config::load(&config, None).unwrap();
            let state = yampi_sync::state::StateStore::open(&settings.state_dir).unwrap();
            for job in &settings.jobs {
                state
                    .record_run(&yampi_sync::state::RunRecord {
                        v: 1,
                        job: job.name.clone(),
                        started_at: chrono::Utc::now(),
                        duration_ms: 1200,
                        exit_code: 0,
                        changed: 3,
                        rejected: 0,
                        unmatched: 1,
                        requests: 2,
                        message: String::new(),
                        report: None,
                    })
                    .unwrap();
            }
            state.flush().await.unwrap();
        }
        let bin = env!("CARGO_BIN_EXE_yampi-sync");
        let mut status_secs = Vec::new();
        for _ in 0..2 {
            let t0 = Instant::now();
            let out = std::process::Command::new(bin)
                .arg("--config")
                .arg(&config)
                .arg("status")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            status_secs.push(t0.elapsed().as_secs_f64());
        }
        // READY arrives on NOTIFY_SOCKET once config, state and the store's ping are done.
        let sock_path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let t0 = Instant::now();
        let mut child = std::process::Command::new(bin)
            .arg("--config")
            .arg(&config)
            .env("NOTIFY_SOCKET", &sock_path)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut ready = None;
        let mut buf = [0u8; 4096];
        while let Ok(len) = sock.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..len]).contains("READY=1") {
                ready = Some(t0.elapsed().as_secs_f64());
                break;
            }
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        println!(
            "(g) {n} jobs: status {:.2} s (first call) / {:.2} s (second); daemon READY after {}",
            status_secs[0],
            status_secs[1],
            ready.map_or("never (120 s)".to_string(), |s| format!("{s:.2} s"))
        );
        sim.shutdown().await;
    });
}

/// How the simulator's queues take their time in case (h), in real (unscaled) seconds.
#[derive(Clone, Copy, Debug)]
enum QueueModel {
    /// `--queue-ms`: every queue takes this long (already scaled), whatever its size.
    Fixed(Duration),
    /// The default: a queue's time is its lines at its kind's rate (real lines per second),
    /// scaled down by the same k as the windows.
    PerLine {
        export_lines_per_sec: f64,
        import_lines_per_sec: f64,
    },
}

/// The export rate case (i) assumes: 100,000 SKUs in its 120 s queue (Yampi documents none).
const EXPORT_LINES_PER_SEC: f64 = 100_000.0 / 120.0;

/// Yampi's real queue poll interval (the `queue_poll` default), for the real-time estimate.
const REAL_POLL_SECS: f64 = 10.0;

impl QueueModel {
    /// The simulator's settings for windows scaled by `k`.
    fn settings(self, k: f64) -> yampi_sync::sim::QueueSettings {
        let per_line = |rate: f64| Duration::from_secs_f64(1.0 / (rate * k));
        match self {
            QueueModel::Fixed(d) => yampi_sync::sim::QueueSettings {
                queue_secs: d,
                ..Default::default()
            },
            QueueModel::PerLine {
                export_lines_per_sec,
                import_lines_per_sec,
            } => yampi_sync::sim::QueueSettings {
                queue_secs: Duration::ZERO,
                export_per_line: per_line(export_lines_per_sec),
                import_per_line: per_line(import_lines_per_sec),
                ..Default::default()
            },
        }
    }

    /// The real (unscaled) time of an export of `export` lines and an import of `import` lines.
    fn real_secs(self, k: f64, export: u64, import: u64) -> f64 {
        match self {
            QueueModel::Fixed(d) => 2.0 * d.as_secs_f64() * k,
            QueueModel::PerLine {
                export_lines_per_sec,
                import_lines_per_sec,
            } => export as f64 / export_lines_per_sec + import as f64 / import_lines_per_sec,
        }
    }

    fn describe(self) -> String {
        match self {
            QueueModel::Fixed(d) => format!("every queue {} ms (--queue-ms)", d.as_millis()),
            QueueModel::PerLine {
                export_lines_per_sec,
                import_lines_per_sec,
            } => format!(
                "queues take their lines at {export_lines_per_sec:.0}/s (export) and {import_lines_per_sec:.0}/s (import) of real time, scaled like the windows"
            ),
        }
    }
}

/// (h) 30,000 changed SKU prices in 10,000 products, once through the API and once through a
/// spreadsheet import, on the simulator with Yampi's limits in windows of `window` instead of 60 s
/// and queues timed by `model` (the SKU export the import reads and the import itself).
fn case_import(window: Duration, model: QueueModel, routes: String) {
    // `RUST_LOG=yampi_sync=debug` shows where the import's time goes, stage by stage.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let k = 60_000.0 / window.as_millis() as f64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let catalog = sim::sample_catalog(10_000, 3, 7);
        let skus: u64 = catalog.products.iter().map(|p| p.skus.len() as u64).sum();
        let mut results = Vec::new();
        for route in ["api", "import"].into_iter().filter(|r| routes.split(',').any(|x| x == *r)) {
            let sim = Simulator::start(sim_config(window), catalog.clone()).await.unwrap();
            sim.set_queue_settings(model.settings(k));
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("erp")).unwrap();
            // Two SKUs of a product share their new price, the third differs (as in case c).
            let mut feed = String::from("Código;Preço\n");
            for p in &catalog.products {
                for (n, s) in p.skus.iter().enumerate() {
                    let cents = 50_000 + (p.id % 97) as i64 * 10 + i64::from(n == 2);
                    feed.push_str(&format!("{};{}\n", s.sku, Decimal::new(cents, 2).to_string().replace('.', ",")));
                }
            }
            std::fs::write(dir.path().join("erp/precos-1.csv"), feed).unwrap();
            std::fs::write(
                dir.path().join("price.toml"),
                "match = \"sku\"\nkey = \"Código\"\ndecimal = \"comma\"\n[price]\nprice_sale = \"Preço\"\nmax_change_pct = 1000000\n",
            )
            .unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let config = dir.path().join("yampi-sync.toml");
            std::fs::write(
                &config,
                format!(
                    "state_dir = \"{state}\"\n[[store]]\nname = \"b\"\nalias = \"bench\"\nbase_url = \"{base}\"\nuser_token = \"bench-token\"\nuser_secret_key = \"bench-secret\"\nqueue_poll = \"{poll}ms\"\n[store.limits]\nwindow_ms = {w}\n[[job]]\nname = \"precos\"\nkind = \"price\"\nsource = {{ path = \"erp/*.csv\", settle_ms = 0 }}\nmapping = \"price.toml\"\nroute = \"{route}\"\n[publish]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\n",
                    state = dir.path().join("state").display(),
                    base = sim.base_url(),
                    poll = (window.as_millis() / 6).max(50),
                    w = window.as_millis(),
                ),
            )
            .unwrap();
            let settings = yampi_sync::config::load(&config, None).unwrap();
            let state = yampi_sync::state::StateStore::open(&settings.state_dir).unwrap();
            let clients = pipeline::clients(&settings).unwrap();
            let opts = RunOptions::default();
            let publish = yampi_sync::app::start_publish(&settings, &opts).await.unwrap();
            let opts = RunOptions { publish: publish.clone(), ..opts };
            // The first index is the same for both routes: built before the clock starts.
            let mut index_only = RunOptions { dry_run: true, ..RunOptions::default() };
            index_only.publish = publish.clone();
            let _ = pipeline::run_once(&settings, &state, &clients, &index_only).await;
            sim.clear_requests();
            let t0 = Instant::now();
            let reports = pipeline::run_once(&settings, &state, &clients, &opts).await;
            let secs = t0.elapsed().as_secs_f64();
            let requests = sim.requests().len();
            let r = &reports[0];
            println!("  route {route}: {}", r.summary_line());
            if let Some(p) = publish {
                p.shutdown().await;
            }
            let prices_right = catalog.products.iter().all(|p| {
                p.skus.iter().enumerate().all(|(n, s)| {
                    let cents = 50_000 + (p.id % 97) as i64 * 10 + i64::from(n == 2);
                    sim.sku_prices(s.id).is_some_and(|(_, sale, _)| sale == Decimal::new(cents, 2))
                })
            });
            results.push((route, requests, secs, r.exit_code, prices_right, sim.count_status(429)));
            sim.shutdown().await;
        }
        // Real time: the API route's is its rate limit's (wall × k). The import's waits scale
        // but its CPU work does not: its requests at 60 a minute, plus its queues' real time and
        // a real poll each, plus what of the wall was neither (CPU, counted once).
        let queue_scaled = model.real_secs(k, skus, skus) / k;
        let mut real = Vec::new();
        for (route, requests, secs, code, ok, r429) in &results {
            let windows = (*requests as f64 / 60.0).ceil();
            let est = if *route == "api" {
                secs * k
            } else {
                let work = (secs - queue_scaled - windows * window.as_secs_f64()).max(0.0);
                windows * 60.0 + model.real_secs(k, skus, skus) + 2.0 * REAL_POLL_SECS + work
            };
            real.push(est);
            println!(
                "(h) route {route}: {requests} requests, {secs:.1} s wall; at Yampi's real limits about {:.0} min; exit {code}, every price right: {ok}, {r429} × 429",
                est / 60.0
            );
        }
        if let [api, import] = &results[..] {
            println!(
                "(h) api ÷ import: {:.1}× the requests, {:.1}× the wall time (windows {} ms, {}); at the real limits about {:.1}× the time",
                api.1 as f64 / import.1 as f64,
                api.2 / import.2,
                window.as_millis(),
                model.describe(),
                real[0] / real[1]
            );
        }
    });
}
