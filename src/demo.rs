//! `yampi-sync demo`: the embedded default (README.md, first command).
//!
//! Starts the bundled simulator on a loopback port with a sample catalog (100 products, 300
//! SKUs, two warehouses), then syncs the sample ERP exports shipped in `config/demo/`: first
//! the full feed, then the next day's file with a few changes, a bad row and an unknown code,
//! and prints each summary and report path. The simulator's rate-limit window is one second
//! instead of one minute (same request counts), so the demo takes seconds, not minutes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pipeline::{self, RunOptions};
use crate::report::{EXIT_FAILED, EXIT_OK};
use rust_decimal::Decimal;

use crate::sim::{Faults, QueueSettings, SimConfig, SimLimits, Simulator, sample_catalog};

const DEMO_CONFIG: &str = include_str!("../config/demo/yampi-sync.toml");
const DEMO_MAPPING: &str = include_str!("../config/demo/stock.toml");
const DEMO_PRICE_MAPPING: &str = include_str!("../config/demo/price.toml");
const FEED_DAY1: &[u8] = include_bytes!("../config/demo/estoque-1.csv");
const FEED_DAY2: &[u8] = include_bytes!("../config/demo/estoque-2.csv");
const DEMO_TOKEN: &str = "demo-user-token";
const DEMO_SECRET: &str = "demo-secret-key";

pub async fn run(state_dir: Option<&Path>) -> i32 {
    match run_inner(state_dir).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: the demo failed: {e}");
            EXIT_FAILED
        }
    }
}

async fn run_inner(state_dir: Option<&Path>) -> Result<(), String> {
    let sim = Simulator::start(
        SimConfig {
            alias: "loja-demo".into(),
            user_token: DEMO_TOKEN.into(),
            user_secret_key: DEMO_SECRET.into(),
            window: Duration::from_secs(1),
            limits: SimLimits::default(),
            faults: Faults::default(),
        },
        sample_catalog(100, 3, 7),
    )
    .await
    .map_err(|e| format!("cannot start the simulator: {e}"))?;
    println!(
        "Yampi simulator listening on {} (sample catalog: 100 products, 300 SKUs, 2 warehouses)",
        sim.base_url()
    );

    let dir: PathBuf = match state_dir {
        Some(d) => d.to_path_buf(),
        None => tempfile::Builder::new()
            .prefix("yampi-sync-demo-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary folder: {e}"))?
            .keep(),
    };
    let write = |rel: &str, bytes: &[u8]| -> Result<PathBuf, String> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    };
    let config_text = DEMO_CONFIG
        .replace("@BASE_URL@", &sim.base_url())
        .replace("@STATE_DIR@", &dir.join("state").to_string_lossy())
        .replace("@USER_TOKEN@", DEMO_TOKEN)
        .replace("@USER_SECRET_KEY@", DEMO_SECRET)
        .replace("@PUBLISH_PORT@", &free_port()?.to_string());
    let config_path = write("yampi-sync.toml", config_text.as_bytes())?;
    // The file holds credentials (the simulator's): readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600));
    }
    write("mappings/stock.toml", DEMO_MAPPING.as_bytes())?;
    write("mappings/price.toml", DEMO_PRICE_MAPPING.as_bytes())?;
    write("erp/estoque-20261121.csv", FEED_DAY1)?;

    // The store's queues (the first sync's stock exports, the import, the audit) finish in
    // under a second.
    sim.set_queue_settings(QueueSettings {
        queue_secs: Duration::from_millis(800),
        ..QueueSettings::default()
    });
    let settings = crate::config::load(&config_path, None).map_err(|e| e.to_string())?;
    let state = crate::state::StateStore::open(&settings.state_dir).map_err(|e| e.to_string())?;
    let clients = pipeline::clients(&settings)?;
    let opts = RunOptions {
        jobs: vec!["estoque".into()],
        ..RunOptions::default()
    };

    println!(
        "\n1) First sync of {}:",
        dir.join("erp/estoque-20261121.csv").display()
    );
    let first = pipeline::run_once(&settings, &state, &clients, &opts).await;
    print_reports(&first);

    // The next export: newer file, a few quantities changed, one bad row, one unknown code.
    std::thread::sleep(Duration::from_millis(20));
    write("erp/estoque-20261122.csv", FEED_DAY2)?;
    let writes_before = sim.count("POST", "/stocks/sync");
    println!(
        "\n2) Next export, {}:",
        dir.join("erp/estoque-20261122.csv").display()
    );
    let second = pipeline::run_once(&settings, &state, &clients, &opts).await;
    print_reports(&second);
    println!(
        "   the simulator received {} stocks/sync request(s) for this export",
        sim.count("POST", "/stocks/sync") - writes_before
    );

    println!("\n3) The same export again (nothing changed):");
    let third = pipeline::run_once(&settings, &state, &clients, &opts).await;
    print_reports(&third);
    // The ERP's price list: every SKU 5 % up, sent as one spreadsheet import.
    let catalog = sim.catalog();
    let mut prices = String::from("Código;Preço\n");
    for p in &catalog.products {
        for k in &p.skus {
            let new = (k.price_sale * Decimal::new(105, 2)).round_dp(2);
            prices.push_str(&format!(
                "{};{}\n",
                k.sku,
                new.to_string().replace('.', ",")
            ));
        }
    }
    write("erp/precos-20261122.csv", prices.as_bytes())?;
    println!(
        "\n4) The ERP's price list, {}, as one spreadsheet import:",
        dir.join("erp/precos-20261122.csv").display()
    );
    let price_opts = RunOptions {
        jobs: vec!["precos".into()],
        ..RunOptions::default()
    };
    let publish = crate::app::start_publish(&settings, &price_opts)
        .await
        .map_err(|_| "cannot start the file server".to_string())?;
    let price_opts = RunOptions {
        publish: publish.clone(),
        ..price_opts
    };
    let fourth = pipeline::run_once(&settings, &state, &clients, &price_opts).await;
    if let Some(p) = publish {
        p.shutdown().await;
    }
    print_reports(&fourth);
    println!(
        "   the simulator received {} import(s) and {} price write(s) through the API",
        sim.import_posts(),
        sim.count("PUT", "batch-update-skus")
    );

    // Two sales the ERP has not seen yet: the store now differs from the ERP for two SKUs.
    let planted: Vec<(String, i64)> = catalog.products[..2]
        .iter()
        .map(|p| {
            let k = &p.skus[0];
            sim.update_sku(k.id, |s| {
                if let Some(st) = s.stocks.iter_mut().find(|st| st.stock_id == 1) {
                    st.quantity = (st.quantity - 1).max(0);
                }
            });
            (k.sku.clone(), 1)
        })
        .collect();
    println!(
        "\n5) An audit after two sales in the store ({}), through the export queues:",
        planted
            .iter()
            .map(|(sku, _)| sku.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let writes_before = sim.count("POST", "/stocks/sync") + sim.import_posts();
    let audit_opts = RunOptions {
        jobs: vec!["auditoria".into()],
        ..RunOptions::default()
    };
    let fifth = pipeline::run_once(&settings, &state, &clients, &audit_opts).await;
    for r in &fifth {
        println!("   {}", r.summary_line());
        for d in r.differences.iter().take(crate::report::SHOWN_LINES) {
            println!(
                "     difference: {} (SKU {}) {}: store {} — ERP {}",
                d.key,
                d.sku_id,
                d.field,
                d.store
                    .as_ref()
                    .map_or_else(|| "(not in the export)".to_string(), |v| v.to_string()),
                d.erp
            );
        }
    }
    println!(
        "   writes the audit sent: {}",
        sim.count("POST", "/stocks/sync") + sim.import_posts() - writes_before
    );

    println!(
        "\nState, reports and files are in {}\n(429 answers from the simulator: {})",
        dir.display(),
        sim.count_status(429)
    );
    let failed = first
        .iter()
        .chain(&fourth)
        .chain(&fifth)
        .chain(&second)
        .chain(&third)
        .any(|r| r.exit_code == EXIT_FAILED);
    sim.shutdown().await;
    if failed {
        return Err("a job failed; see the messages above".into());
    }
    Ok(())
}

/// A loopback port free right now, for the demo's file server.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// Each run's summary line and, under it, the reasons for what it refused.
fn print_reports(reports: &[crate::report::RunReport]) {
    for r in reports {
        println!("   {}", r.summary_line());
        for line in r.reason_lines(crate::report::SHOWN_LINES) {
            println!("     {line}");
        }
    }
}
