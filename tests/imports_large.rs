//! Imports at full size and the template they repeat, against the simulator:
//! - a real 70,000-line price import: two files (65,535 + 4,465 rows, the most a `.xls` sheet
//!   holds under its header), two `POST catalog/skus/import`, every line accounted for, every
//!   price right in the store afterwards, nothing left published;
//! - the SKU export's header kept in the state store, a changed one named in a warning, and
//!   `check` comparing `import_template` with it.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use support::prices::*;
use support::*;
use yampi_sync::pipeline::{self, RunOptions};
use yampi_sync::report::{Outcome, worst_exit};
use yampi_sync::sim::{Catalog, QueueSettings, sample_catalog};

const SKUS: usize = 70_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seventy_thousand_changed_skus_go_as_two_files_and_every_line_is_accounted_for() {
    let started = Instant::now();
    let catalog = sample_catalog(SKUS / 2, 2, 11);
    let skus = all_skus(&catalog);
    assert_eq!(skus.len(), SKUS);
    let mut env = price_env(
        &catalog,
        &price_mapping("comma", "price_sale = \"Preço\"\nmax_change_pct = 5000\n"),
    )
    .await;
    env.sim.set_queue_settings(QueueSettings {
        queue_secs: Duration::from_millis(200),
        ..QueueSettings::default()
    });
    env.job_extra = format!(
        "route = \"import\"\nqueue_timeout = \"10m\"\n{}",
        publish_section(free_port())
    );
    // Every SKU's sale price goes up by 1.01.
    let sale_of = |c: &yampi_sync::sim::Catalog| -> HashMap<u64, Decimal> {
        c.products
            .iter()
            .flat_map(|p| p.skus.iter().map(|s| (s.id, s.price_sale)))
            .collect()
    };
    let before = sale_of(&catalog);
    let want: Vec<Decimal> = skus.iter().map(|s| before[&s.1] + d("1.01")).collect();
    let feed = price_feed(&catalog, |i| {
        (
            want[i].to_string().replace('.', ","),
            String::new(),
            String::new(),
        )
    });
    env.write_feed("estoque-1.csv", &feed);
    env.write_config();
    let config = env.path("yampi-sync.toml");

    let settings = yampi_sync::config::load(&config, None).expect("valid config");
    let state = yampi_sync::state::StateStore::open(&settings.state_dir).expect("state");
    let clients = pipeline::clients(&settings).unwrap();
    let opts = RunOptions::default();
    let publish = yampi_sync::app::start_publish(&settings, &opts)
        .await
        .expect("file server")
        .expect("a [publish] section");
    let opts = RunOptions {
        publish: Some(publish.clone()),
        ..opts
    };
    let reports = tokio::time::timeout(
        Duration::from_secs(900),
        pipeline::run_once(&settings, &state, &clients, &opts),
    )
    .await
    .expect("the run ends");
    let report = &reports[0];
    let code = worst_exit(reports.iter().map(|r| r.exit_code));
    assert_eq!(code, 0, "{}: {}", report.summary_line(), report.message);

    // Two imports, two different files, split at the sheet's limit.
    assert_eq!(env.sim.import_posts(), 2, "two imports posted");
    assert_eq!(env.sim.import_lines(), [65_535, 4_465]);
    let urls: Vec<String> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("catalog/skus/import"))
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            v["file_url"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(urls.len(), 2);
    assert_ne!(urls[0], urls[1], "two different files");
    // Nothing left published: both files answer 404 while the server still runs.
    let http = reqwest::Client::new();
    for url in &urls {
        let status = http.get(url).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 404, "{url} is withdrawn");
    }
    publish.shutdown().await;

    // Every line accounted for: one applied change per SKU, and the store has every price.
    assert_eq!(report.changes.len(), SKUS);
    let by_sku: HashMap<u64, &Outcome> = report
        .changes
        .iter()
        .map(|c| (c.sku_id, &c.outcome))
        .collect();
    assert_eq!(by_sku.len(), SKUS, "one change per SKU");
    let after = sale_of(&env.sim.catalog());
    let mut wrong = Vec::new();
    for (i, (_, id, code)) in skus.iter().enumerate() {
        let row = by_sku.get(id).copied();
        let applied = row.is_some_and(|o| *o == Outcome::Applied);
        let price = after.get(id).copied();
        if !applied || price != Some(want[i]) {
            wrong.push(format!("{code}: {row:?}, price {price:?}"));
        }
        if wrong.len() > 5 {
            break;
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
    // Nothing pending: the ledger holds no import line.
    let pending = state
        .ledger(&settings.jobs[0].name)
        .unwrap()
        .pending()
        .unwrap();
    assert!(
        pending.is_empty(),
        "{} operations left pending",
        pending.len()
    );
    eprintln!(
        "70,000-line import test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The env's config (and mapping) with the credentials taken from the environment, as the
/// binary reads them.
fn write_env_config(env: &Env) -> std::path::PathBuf {
    let config = env.write_config();
    std::fs::write(&config, env.config_text(false)).unwrap();
    config
}

/// The binary with `args`, on the env's config.
fn binary(env: &Env, args: &[&str]) -> std::process::Output {
    let config = write_env_config(env);
    std::process::Command::new(env!("CARGO_BIN_EXE_yampi-sync"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("YS_TEST_TOKEN", TOKEN)
        .env("YS_TEST_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs")
}

/// A feed raising every SKU's sale price by `by` over what the store has now.
fn raise_all(env: &Env, catalog: &Catalog, by: &str) {
    let now = env.sim.catalog();
    let sale: HashMap<u64, Decimal> = now
        .products
        .iter()
        .flat_map(|p| p.skus.iter().map(|s| (s.id, s.price_sale)))
        .collect();
    let skus = all_skus(catalog);
    let feed = price_feed(catalog, |i| {
        (
            (sale[&skus[i].1] + d(by)).to_string().replace('.', ","),
            String::new(),
            String::new(),
        )
    });
    env.write_feed("estoque-1.csv", &feed);
}

fn stored_header(env: &Env) -> yampi_sync::state::StoredHeader {
    kept_sku_header(env).expect("the SKU export's header is kept")
}

// The binary runs while the simulator serves it from this test's runtime: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_header_is_kept_a_changed_one_is_named_and_check_compares_the_template() {
    let catalog = small_catalog();
    let mut env = price_env(
        &catalog,
        &price_mapping("comma", "price_sale = \"Preço\"\nmax_change_pct = 5000\n"),
    )
    .await;
    env.sim.set_queue_settings(QueueSettings {
        queue_secs: Duration::from_millis(100),
        ..QueueSettings::default()
    });
    let publish = publish_section(free_port());
    env.job_extra = format!("route = \"import\"\n{publish}");
    raise_all(&env, &catalog, "1.01");
    let out = binary(&env, &["--run-once"]);
    assert_exit(&out, 0);
    let first = env.sim.sku_export_header();
    let kept = stored_header(&env);
    assert_eq!(kept.columns, first);
    assert!(kept.queue_id > 0);

    // The store reorders its template: the next run follows it, says what moved, keeps it.
    env.sim.set_queue_settings(QueueSettings {
        queue_secs: Duration::from_millis(100),
        column_seed: 99,
        ..QueueSettings::default()
    });
    let second = env.sim.sku_export_header();
    assert_ne!(first, second);
    raise_all(&env, &catalog, "1.01");
    let out = binary(&env, &["--run-once"]);
    let text = output_text(&out);
    assert_exit(&out, 0);
    assert!(
        text.contains("SKU export header changed") && text.contains("moved"),
        "{text}"
    );
    let moved = first
        .iter()
        .position(|c| second.iter().position(|d| d == c) != first.iter().position(|d| d == c));
    let name = &first[moved.expect("a column moved")];
    assert!(text.contains(&format!("\"{name}\" from column")), "{text}");
    let kept = stored_header(&env);
    assert_eq!(kept.columns, second);

    // `check --offline`: a template with the old header is refused naming the column; the
    // kept header's own is accepted.
    yampi_sync::xls::write_xls(&env.path("modelo.xls"), "SKUs", &first, &[]).unwrap();
    env.job_extra = format!("route = \"import\"\nimport_template = \"modelo.xls\"\n{publish}");
    let out = binary(&env, &["check", "--offline"]);
    let text = output_text(&out);
    assert_exit(&out, 2);
    let col = first.iter().zip(&second).position(|(a, b)| a != b).unwrap();
    assert!(
        text.contains("modelo.xls")
            && text.contains(&format!("column {}", col + 1))
            && text.contains(&first[col])
            && text.contains("SKU export header read"),
        "{text}"
    );
    yampi_sync::xls::write_xls(&env.path("modelo.xls"), "SKUs", &second, &[]).unwrap();
    let out = binary(&env, &["check", "--offline"]);
    let text = output_text(&out);
    assert_exit(&out, 0);
    assert!(text.contains("same 12 columns"), "{text}");
}
