//! Price jobs through Yampi's import queues, against the simulator: the file published, posted
//! once and watched to its logs; per-line outcomes; resume after a kill or a timeout; the `auto`
//! route; files split; a template that differs refused before anything is sent.

mod support;

use std::time::Duration;

use rust_decimal::Decimal;
use support::prices::*;
use support::*;
use yampi_sync::pipeline::{self, RunOptions};
use yampi_sync::report::{Outcome, RunReport, worst_exit};
use yampi_sync::sim::{Catalog, Faults, QueueSettings, SimLimits};

/// Sale price only, unchanged otherwise, dot decimals.
fn mapping() -> String {
    price_mapping(
        "comma",
        "price_sale = \"Preço\"\nprice_discount = \"Promoção\"\nprice_cost = \"Custo\"\nmax_change_pct = 5000\n",
    )
}

/// A price env whose job takes `route`, with `[publish]` on a free loopback port and queues of
/// `queue_ms`.
async fn import_env(catalog: &Catalog, route: &str, extra: &str, queue_ms: u64) -> Env {
    let mut env = price_env(catalog, &mapping()).await;
    env.sim.set_queue_settings(QueueSettings {
        queue_secs: Duration::from_millis(queue_ms),
        ..QueueSettings::default()
    });
    let port = free_port();
    env.job_extra = format!("route = \"{route}\"\n{extra}\n{}", publish_section(port));
    env
}

/// One in-process run with the file server (kept running until `after` has looked at it).
async fn run_with<F: AsyncFnOnce(Option<&yampi_sync::publish::PublishServer>)>(
    env: &Env,
    opts: RunOptions,
    after: F,
) -> (i32, Vec<RunReport>) {
    let config = env.write_config();
    let settings = yampi_sync::config::load(&config, None).expect("valid config");
    let state = yampi_sync::state::StateStore::open(&settings.state_dir).expect("state");
    let clients = pipeline::clients(&settings).unwrap();
    let publish = yampi_sync::app::start_publish(&settings, &opts)
        .await
        .expect("file server");
    let opts = RunOptions {
        publish: publish.clone(),
        ..opts
    };
    let reports = tokio::time::timeout(
        Duration::from_secs(120),
        pipeline::run_once(&settings, &state, &clients, &opts),
    )
    .await
    .expect("the run ends");
    after(publish.as_ref()).await;
    if let Some(p) = publish {
        p.shutdown().await;
    }
    (worst_exit(reports.iter().map(|r| r.exit_code)), reports)
}

async fn run(env: &Env) -> (i32, RunReport) {
    let (code, mut reports) = run_with(env, RunOptions::default(), async |_| {}).await;
    (code, reports.remove(0))
}

/// A feed that raises every SKU's sale price by 1.01, keeping the other cells blank; and the
/// sale prices it sets, in `all_skus` order.
fn feed(env: &Env, catalog: &Catalog) -> (String, Vec<Decimal>) {
    let want: Vec<Decimal> = all_skus(catalog)
        .iter()
        .map(|s| sale(env, s.1) + d("1.01"))
        .collect();
    let text = price_feed(catalog, |i| {
        (
            want[i].to_string().replace('.', ","),
            String::new(),
            String::new(),
        )
    });
    (text, want)
}

fn sale(env: &Env, id: u64) -> Decimal {
    env.sim.sku_prices(id).expect("known SKU").1
}

fn import_urls(env: &Env) -> Vec<String> {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("catalog/skus/import"))
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            v["file_url"].as_str().unwrap().to_string()
        })
        .collect()
}

fn price_writes(env: &Env) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" || r.path.contains("batch-update"))
        .count()
}

#[tokio::test]
async fn an_import_applies_every_line_reports_locked_ones_and_withdraws_its_file() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let env = import_env(&catalog, "import", "", 300).await;
    let locked = vec![skus[3].1, skus[10].1];
    env.sim.set_faults(Faults {
        locked_sku_ids: locked.clone(),
        ..Faults::default()
    });
    let before: Vec<(Decimal, Decimal, Decimal)> = skus
        .iter()
        .map(|s| env.sim.sku_prices(s.1).unwrap())
        .collect();
    let (text, want) = feed(&env, &catalog);
    env.write_feed("estoque-1.csv", &text);
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    let (code, reports) = run_with(&env, RunOptions::default(), async |server| {
        assert!(server.is_some(), "the run had its file server");
        // While the server still runs: the file is gone, nothing else is served.
        for url in import_urls(&env) {
            let status = client.get(&url).send().await.unwrap().status();
            seen.push((url.clone(), status.as_u16()));
            let base = url.rsplit_once('/').unwrap().0;
            for other in [
                format!("{base}/other.xls"),
                format!("{base}/"),
                base.to_string(),
            ] {
                let s = client.get(&other).send().await.unwrap().status();
                assert_eq!(s.as_u16(), 404, "{other}");
            }
        }
    })
    .await;
    let report = &reports[0];
    assert_eq!(code, 4, "{}", report.summary_line());
    assert_eq!(env.sim.import_posts(), 1, "exactly one import posted");
    assert_eq!(price_writes(&env), 0, "no price went through the API");
    // The file: a token of ≥ 128 bits, no query string, 404 once the queue finished.
    assert_eq!(seen.len(), 1);
    let (url, status) = &seen[0];
    assert_eq!(*status, 404, "the finished import's file is withdrawn");
    assert!(!url.contains('?'), "{url}");
    let token = url.split('/').rev().nth(1).unwrap();
    assert!(
        token.len() >= 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
    // Per line: the locked SKUs refused with Yampi's message and their line, the rest applied.
    for (i, (_, id, code)) in skus.iter().enumerate() {
        let row = report
            .changes
            .iter()
            .find(|c| c.sku_id == *id)
            .unwrap_or_else(|| panic!("SKU {code} in the report"));
        if locked.contains(id) {
            let Outcome::Failed(m) = &row.outcome else {
                panic!("{code}: {:?}", row.outcome)
            };
            assert!(
                m.contains("bloqueado") && m.contains("import line"),
                "{code}: {m}"
            );
            assert_eq!(env.sim.sku_prices(*id).unwrap(), before[i], "{code}");
        } else {
            assert_eq!(row.outcome, Outcome::Applied, "{code}");
            assert_eq!(sale(&env, *id), want[i], "{code}");
            // The other prices were written back as the store had them.
            let (cost, _, discount) = env.sim.sku_prices(*id).unwrap();
            assert_eq!((cost, discount), (before[i].0, before[i].2), "{code}");
        }
    }
    assert_eq!(report.products_failed, 2);
    // Nothing pending: the ledger is clean.
    let state = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    assert!(yampi_sync::pipeline::import::pending_queues(&state, &["estoque"]).is_empty());
}

#[tokio::test]
async fn a_queue_past_queue_timeout_fails_the_job_and_the_next_run_resumes_it_without_posting() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let env = import_env(&catalog, "import", "queue_timeout = \"1s\"", 200).await;
    env.sim.set_faults(Faults {
        import_queue_never_finishes: true,
        ..Faults::default()
    });
    let (text, want) = feed(&env, &catalog);
    env.write_feed("estoque-1.csv", &text);
    let (code, report) = run(&env).await;
    assert_eq!(code, 3, "{}", report.summary_line());
    assert!(
        report.message.contains("did not finish") && report.message.contains("resumes"),
        "{}",
        report.message
    );
    assert_eq!(env.sim.import_posts(), 1);
    assert!(
        report
            .changes
            .iter()
            .all(|c| matches!(&c.outcome, Outcome::Unknown(m) if m.contains("did not finish"))),
        "no line counted as applied: their outcome is unknown"
    );
    assert_eq!(report.unknown_outcomes(), report.changes.len() as u64);
    assert!(
        report
            .summary_line()
            .contains(&format!("{} unknown", report.changes.len())),
        "{}",
        report.summary_line()
    );
    {
        use calamine::{Reader, Xlsx, open_workbook};
        let path = report.report_path.as_ref().expect("a report");
        let mut wb: Xlsx<_> = open_workbook(path).unwrap();
        let changes = wb.worksheet_range("Changes").unwrap();
        let outcome = changes.get_value((1, 10)).unwrap().to_string();
        assert!(
            outcome.starts_with("outcome unknown: import queue"),
            "{outcome}"
        );
        let summary = wb.worksheet_range("Summary").unwrap();
        let unknown = summary
            .rows()
            .find(|r| r[0] == "Outcomes unknown")
            .map(|r| r[1].to_string());
        assert_eq!(unknown, Some(report.changes.len().to_string()));
    }
    {
        let state = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
        let pending = yampi_sync::pipeline::import::pending_queues(&state, &["estoque"]);
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].lines_sent, skus.len() as u64);
        assert!(pending[0].queue_id.is_some());
    }
    // `status --json` shows it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yampi-sync"))
        .arg("--config")
        .arg(env.path("yampi-sync.toml"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pending_queues") && text.contains("\"lines_sent\":60"),
        "{text}"
    );
    // The queue finishes; the next run watches it, posts nothing, and the prices are right.
    env.sim.set_faults(Faults::default());
    let (code, report) = run(&env).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.import_posts(), 1, "the import was not posted again");
    assert_eq!(price_writes(&env), 0);
    for (i, (_, id, _)) in skus.iter().enumerate() {
        assert_eq!(sale(&env, *id), want[i]);
    }
}

#[tokio::test]
async fn a_run_killed_while_its_queue_runs_is_resumed_and_never_posted_twice() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let env = import_env(&catalog, "import", "", 4_000).await;
    let (text, want) = feed(&env, &catalog);
    env.write_feed("estoque-1.csv", &text);
    let config = env.path("yampi-sync.toml");
    let binary = |args: &[&str]| {
        std::fs::write(env.path("stock.toml"), &env.mapping).unwrap();
        std::fs::write(&config, env.config_text(false)).unwrap();
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_yampi-sync"));
        c.arg("--config")
            .arg(&config)
            .args(args)
            .env("YS_TEST_TOKEN", TOKEN)
            .env("YS_TEST_SECRET", SECRET)
            .env_remove("RUST_LOG");
        c
    };
    let mut child = Running(binary(&["--run-once"]).spawn().unwrap());
    poll_until(
        "the import to be posted",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || env.sim.import_posts() == 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill_hard();
    assert_ne!(
        sale(&env, skus[0].1),
        want[0],
        "the queue was still pending"
    );
    // The rerun, bounded: it must end on its own once the queue finishes.
    let log = env.path("rerun.log");
    let mut rerun = binary(&["--run-once"]);
    rerun
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(env.path("rerun.err")).unwrap());
    let mut child = Running(rerun.spawn().unwrap());
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill_hard();
            panic!(
                "the rerun did not end: {}",
                std::fs::read_to_string(env.path("rerun.err")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        status.code(),
        Some(0),
        "{}{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(env.path("rerun.err")).unwrap_or_default()
    );
    assert_eq!(env.sim.import_posts(), 1, "nothing posted again");
    for (i, (_, id, _)) in skus.iter().enumerate() {
        assert_eq!(sale(&env, *id), want[i]);
    }
}

#[tokio::test]
async fn auto_takes_the_api_for_a_few_skus_and_an_import_for_many() {
    let catalog = small_catalog();
    let limits = SimLimits {
        get_skus: 1000,
        get_products: 1000,
        default: 5,
    };
    let mut env = Env::start_with(catalog.clone(), limits, Duration::from_secs(60)).await;
    env.kind = "price".into();
    env.mapping = mapping();
    let port = free_port();
    env.job_extra = format!(
        "route = \"auto\"\nimport_overhead = \"10s\"\n\n[publish]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\n"
    );
    let dry = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    // Two SKUs of one product: one write, no wait under the limits.
    let tiny = yampi_sync::sim::sample_catalog(1, 2, 11);
    let mut few = Env::start_with(tiny.clone(), limits, Duration::from_secs(60)).await;
    few.kind = "price".into();
    few.mapping = mapping();
    few.job_extra = env.job_extra.clone();
    let (text, _) = feed(&few, &tiny);
    few.write_feed("estoque-1.csv", &text);
    let (code, reports) = run_with(&few, dry.clone(), async |_| {}).await;
    let m = &reports[0].message;
    assert_eq!(code, 0, "{m}");
    assert!(m.contains("route: the API"), "{m}");
    // Every SKU: 20 product writes, minutes under 5 a minute; an import takes seconds.
    let (text, _) = feed(&env, &catalog);
    env.write_feed("estoque-2.csv", &text);
    let (code, reports) = run_with(&env, dry.clone(), async |_| {}).await;
    let m = &reports[0].message;
    assert_eq!(code, 0, "{m}");
    assert!(m.contains("route: an import"), "{m}");
    assert!(
        m.contains("API ETA") && m.contains("import estimate"),
        "{m}"
    );
    assert!(
        reports[0]
            .plan
            .iter()
            .any(|(r, n)| r.contains("catalog/skus/import") && *n == 1),
        "{:?}",
        reports[0].plan
    );
    // Without [publish], auto means the API.
    env.job_extra = "route = \"auto\"\nimport_overhead = \"10s\"\n".into();
    let (_, reports) = run_with(&env, dry, async |_| {}).await;
    let m = &reports[0].message;
    assert!(
        m.contains("route: the API") && m.contains("[publish]"),
        "{m}"
    );
    assert_eq!(env.sim.import_posts(), 0);
}

#[tokio::test]
async fn more_lines_than_a_file_holds_go_as_several_imports_and_no_line_is_lost() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let env = import_env(&catalog, "import", "", 200).await;
    // 60 lines, 25 a file (a hidden test size; real files hold 65,535): three files.
    yampi_sync::pipeline::import::set_split_for_tests(&env.sim.base_url(), 25);
    let (text, want) = feed(&env, &catalog);
    env.write_feed("estoque-1.csv", &text);
    let (code, report) = run(&env).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.import_posts(), 3);
    let urls = import_urls(&env);
    assert_eq!(urls.len(), 3);
    let mut distinct = urls.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "three different files");
    for (i, (_, id, _)) in skus.iter().enumerate() {
        assert_eq!(sale(&env, *id), want[i]);
    }
    assert!(report.changes.iter().all(|c| c.outcome == Outcome::Applied));
    // The summary counts the lines and the files they went in, not 60 "writes".
    let line = report.summary_line();
    assert!(
        line.contains(&format!(
            "{} SKUs changed by {} import lines in 3 files (0 failed)",
            skus.len(),
            skus.len()
        )),
        "{line}"
    );
}

#[tokio::test]
async fn a_template_whose_header_differs_from_the_export_is_refused_before_anything_is_sent() {
    let catalog = small_catalog();
    let env = import_env(&catalog, "import", "import_template = \"modelo.xls\"", 200).await;
    let mut header = env.sim.sku_export_header();
    header.swap(0, 1);
    yampi_sync::xls::write_xls(&env.path("modelo.xls"), "SKUs", &header, &[]).unwrap();
    let (text, _) = feed(&env, &catalog);
    env.write_feed("estoque-1.csv", &text);
    let before: Vec<Decimal> = all_skus(&catalog).iter().map(|s| sale(&env, s.1)).collect();
    let (code, report) = run(&env).await;
    assert_eq!(code, 3, "{}", report.summary_line());
    assert!(
        report.message.contains("modelo.xls")
            && report.message.contains("column 1")
            && report.message.contains(&header[0]),
        "{}",
        report.message
    );
    assert_eq!(env.sim.import_posts(), 0, "nothing posted");
    assert_eq!(price_writes(&env), 0);
    let after: Vec<Decimal> = all_skus(&catalog).iter().map(|s| sale(&env, s.1)).collect();
    assert_eq!(before, after);
    // The same header as the export's is accepted.
    yampi_sync::xls::write_xls(
        &env.path("modelo.xls"),
        "SKUs",
        &env.sim.sku_export_header(),
        &[],
    )
    .unwrap();
    let (code, report) = run(&env).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.import_posts(), 1);
}

#[tokio::test]
async fn check_refuses_route_import_without_publish_and_route_on_a_stock_job() {
    let catalog = small_catalog();
    let mut env = price_env(&catalog, &mapping()).await;
    env.job_extra = "route = \"import\"\n".into();
    let out = env.run_binary(&["check"]);
    let text = output_text(&out);
    assert_exit(&out, 2);
    assert!(
        text.contains("[publish]") && text.contains("route"),
        "{text}"
    );
    env.job_extra = "route = \"sometimes\"\n".into();
    let text = output_text(&env.run_binary(&["check"]));
    assert!(text.contains("auto, api, import"), "{text}");
    env.kind = "stock".into();
    env.mapping = STOCK_MAPPING.into();
    env.job_extra = "route = \"api\"\n".into();
    let text = output_text(&env.run_binary(&["check"]));
    assert!(text.contains("only for price jobs"), "{text}");
}
