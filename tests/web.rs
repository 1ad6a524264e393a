//! The daemon's `[metrics]` listener through the real binary (issue 9, points 11 and 12):
//! `/metrics` values after a run against the simulator, `/healthz`, and the status page loaded
//! in a real headless browser (Debian's chromium, installed by `.ci/run`), with its token.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::daemon::*;
use support::*;
use yampi_sync::pipeline::RunOptions;
use yampi_sync::sim::Faults;

const PAGE_TOKEN: &str = "pagina-SECRETA-5e1c8a90d4";
const BLACK_FRIDAY: &str = r#"edit = { attribute = "price_sale", operation_type = "decrement", value_type = "percent", value = 20, restrictions = { include = { brands_ids = [1] } } }"#;

fn metrics_section() -> String {
    "\n[metrics]\nlisten = \"127.0.0.1:0\"\ntoken = \"${YAMPI_SYNC_STATUS_TOKEN}\"\n".to_string()
}

fn spawn_with_page(env: &Env) -> Running {
    spawn_daemon(env, &[], &[("YAMPI_SYNC_STATUS_TOKEN", PAGE_TOKEN)])
}

/// The address the daemon says it listens on (it binds port 0: the kernel picks one).
async fn listening_on(env: &Env) -> String {
    wait_until("the listener", 30, env, || {
        log_of(env).contains("Listening on http://")
    })
    .await;
    let log = log_of(env);
    let rest = log.split("Listening on http://").nth(1).unwrap();
    rest.split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(':')
        .to_string()
}

/// A daily 6-field schedule whose first time is `lead` from now, in São Paulo (the env's zone):
/// the daemon runs the job exactly once during the test.
fn once_in(lead: Duration) -> String {
    let at = chrono::Utc::now().with_timezone(&chrono_tz::America::Sao_Paulo)
        + chrono::Duration::from_std(lead).unwrap();
    at.format("%-S %-M %-H * * *").to_string()
}

async fn get(url: &str, bearer: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("the listener answers")
}

/// The value of the series whose line starts with `series` (name and labels, as rendered).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_run_in_the_daemon_say_what_it_did() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.schedule = once_in(Duration::from_secs(4));
    env.job_extra = metrics_section();
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let mut daemon = spawn_with_page(&env);
    let addr = listening_on(&env).await;
    let snapshot = env.state_dir().join("status.json");
    wait_until("the daemon's run", 40, &env, || {
        std::fs::read_to_string(&snapshot).is_ok_and(|t| t.contains("\"exit_code\""))
    })
    .await;
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let last = &status["jobs"][0]["last_run"];
    assert_eq!(last["exit_code"], 0, "{status}");
    let changed = last["changed"].as_f64().unwrap();
    assert!(changed > 0.0, "{status}");

    let resp = get(&format!("http://{addr}/metrics"), None).await;
    assert_eq!(resp.status(), 200, "metrics need no token");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = resp.text().await.unwrap();
    let job = "{job=\"estoque\"}";
    assert_eq!(
        value(&m, &format!("yampi_sync_job_last_exit_code{job}")),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, &format!("yampi_sync_job_last_changed{job}")),
        Some(changed),
        "{m}"
    );
    assert_eq!(
        value(&m, &format!("yampi_sync_job_last_rejected{job}")),
        Some(0.0)
    );
    assert_eq!(
        value(&m, &format!("yampi_sync_job_last_unmatched{job}")),
        Some(0.0)
    );
    let started = chrono::DateTime::parse_from_rfc3339(last["started_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0;
    assert_eq!(
        value(
            &m,
            &format!("yampi_sync_job_last_run_timestamp_seconds{job}")
        ),
        Some(started)
    );
    assert_eq!(
        value(
            &m,
            &format!("yampi_sync_job_last_run_duration_seconds{job}")
        ),
        Some(last["duration_ms"].as_f64().unwrap() / 1000.0)
    );
    let since = value(
        &m,
        &format!("yampi_sync_job_seconds_since_last_success{job}"),
    )
    .unwrap();
    assert!((0.0..600.0).contains(&since), "{since}");
    assert_eq!(
        value(&m, &format!("yampi_sync_job_pending_queue_items{job}")),
        Some(0.0)
    );
    // Every POST …/stocks/sync the simulator answered, counted by route and status.
    let writes = env.writes() as f64;
    assert!(writes > 0.0);
    assert_eq!(
        value(
            &m,
            "yampi_sync_api_requests_total{store=\"loja\",method=\"POST\",route=\"/catalog/products/{id}/stocks/sync\",status=\"200\"}"
        ),
        Some(writes),
        "{m}"
    );
    assert_eq!(
        value(&m, "yampi_sync_api_rate_limited_total{store=\"loja\"}"),
        Some(0.0)
    );
    assert_eq!(value(&m, "yampi_sync_schedulers_alive"), Some(1.0));

    let health = get(&format!("http://{addr}/healthz"), None).await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 25), Some(0));
    assert!(
        !log_of(&env).contains(PAGE_TOKEN),
        "the token is never logged"
    );
}

/// Debian's chromium (`.ci/run` installs it).
fn chromium() -> String {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return name.to_string();
        }
    }
    panic!("chromium is not installed: `apt-get install -y chromium` (as .ci/run does)");
}

/// The DOM chromium builds for `url`, headless, with a profile in `profile` (bounded in time).
fn dump_dom(url: &str, profile: &Path) -> String {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_a_browser_shows_the_jobs_the_edit_in_doubt_and_a_report() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    // Nothing runs in the daemon during the test: the page shows what the runs below left.
    env.schedule = "0 0 1 1 *".into();
    let batch = format!(
        "\n[[job]]\nname = \"black-friday\"\nstore = \"loja\"\nkind = \"batch_edit\"\nschedule = \"0 0 1 1 *\"\n{BLACK_FRIDAY}\n"
    );
    env.job_extra = batch.clone();
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let only = |job: &str| RunOptions {
        jobs: vec![job.to_string()],
        now: Some("2026-01-01T03:10:00Z".parse().unwrap()),
        ..RunOptions::default()
    };
    let (code, _) = env.run(only("estoque")).await;
    assert_eq!(code, 0);
    // The batch edit reaches the store but its answer is lost: in doubt.
    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    let (code, reports) = env.run(only("black-friday")).await;
    assert_eq!(code, 3, "{}", reports[0].message);
    env.sim.set_faults(Faults::default());

    env.job_extra = format!("{batch}{}", metrics_section());
    let mut daemon = spawn_with_page(&env);
    let addr = listening_on(&env).await;
    wait_until("the schedulers", 30, &env, || {
        log_of(&env).contains("Daemon started")
    })
    .await;

    // Without the token: refused, and nothing of the page shows.
    for url in [
        format!("http://{addr}/"),
        format!("http://{addr}/?token=wrong-token-0123456789"),
    ] {
        let r = get(&url, None).await;
        assert_eq!(r.status(), 401, "{url}");
        assert!(!r.text().await.unwrap().contains("estoque"));
    }
    assert_eq!(
        get(&format!("http://{addr}/"), Some("wrong-token-0123456789"))
            .await
            .status(),
        401
    );

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/?token={PAGE_TOKEN}");
    let dom = tokio::task::spawn_blocking(move || {
        let dom = dump_dom(&url, profile.path());
        drop(profile);
        dom
    })
    .await
    .unwrap();
    for needle in [
        "<html lang=\"pt-BR\"",
        "Job estoque",
        "Job black-friday",
        "Agendadores: ativos.",
        "Edições em lote em dúvida",
        "yampi-sync resolve black-friday",
        "Fila de importação: 0 item(ns) pendente(s).",
        "Últimas execuções",
    ] {
        assert!(dom.contains(needle), "{needle} in the page:\n{dom}");
    }
    // The last exit of each job: the stock run succeeded, the batch edit failed in doubt.
    let section = |job: &str| {
        dom.split(&format!("data-job=\"{job}\""))
            .nth(1)
            .and_then(|s| s.split("</section>").next())
            .unwrap_or_else(|| panic!("no section for {job}:\n{dom}"))
            .to_string()
    };
    let stock = section("estoque");
    assert!(stock.contains("data-exit=\"0\""), "{stock}");
    assert!(stock.contains("código de saída 0 (tudo certo)"), "{stock}");
    let edit = section("black-friday");
    assert!(edit.contains("data-exit=\"3\""), "{edit}");
    assert!(edit.contains("2026-01-01T00:00:00-03:00"), "{edit}");
    assert!(
        !dom.contains(PAGE_TOKEN),
        "the page's links never carry the token"
    );

    // The report link downloads the run's xlsx.
    let href = stock
        .split("href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a report link")
        .to_string();
    assert!(
        href.starts_with("/relatorios/estoque/") && href.ends_with(".xlsx"),
        "{href}"
    );
    let link = format!("http://{addr}{href}");
    assert_eq!(
        get(&link, None).await.status(),
        401,
        "downloads need the token"
    );
    let r = get(&link, Some(PAGE_TOKEN)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );
    let body = r.bytes().await.unwrap();
    let on_disk = std::fs::read_dir(env.state_dir().join("reports/estoque"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .find(|b| b[..] == body[..]);
    assert!(
        body.starts_with(b"PK") && on_disk.is_some(),
        "the xlsx itself"
    );
    // Only files a run record names: no other file, no way out of the reports.
    for bad in [
        "/relatorios/estoque/nao-existe.xlsx",
        "/relatorios/estoque/..%2F..%2Fyampi-sync.toml",
        "/relatorios/estoque/%2E%2E%2Fstatus.json",
        "/relatorios/outro-job/x.xlsx",
    ] {
        let r = get(&format!("http://{addr}{bad}"), Some(PAGE_TOKEN)).await;
        assert_eq!(r.status(), 404, "{bad}");
    }

    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 25), Some(0));
    assert!(
        !log_of(&env).contains(PAGE_TOKEN),
        "the token is never logged"
    );
    let snapshot = std::fs::read_to_string(env.state_dir().join("status.json")).unwrap();
    assert!(!snapshot.contains(PAGE_TOKEN));
}

#[test]
fn check_validates_the_metrics_section() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut env = rt.block_on(Env::start(small_catalog()));
    env.job_extra = "\n[metrics]\nlisten = \"localhost\"\ntoken = \"curto\"\nport = 1\n".into();
    let out = env.run_binary(&["check"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("[metrics] `listen` \"localhost\" is not an address"),
        "{text}"
    );
    assert!(text.contains("`token` has 5 characters"), "{text}");
    assert!(
        !text.contains("curto\""),
        "the token's value is never shown: {text}"
    );
    assert!(text.contains("port"), "unknown keys are named: {text}");
    env.job_extra = metrics_section();
    let out = env
        .command(&["check"])
        .env("YAMPI_SYNC_STATUS_TOKEN", PAGE_TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_until_the_schedulers_run_and_metrics_answer_meanwhile() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.schedule = "0 0 1 1 *".into();
    env.job_extra = metrics_section();
    // The store is down at start: the daemon waits for it, schedulers not started yet.
    env.sim.set_faults(Faults {
        ping_status: Some(503),
        ..Faults::default()
    });
    let mut daemon = spawn_with_page(&env);
    let addr = listening_on(&env).await;
    let health = get(&format!("http://{addr}/healthz"), None).await;
    assert_eq!(health.status(), 503);
    assert!(
        health
            .text()
            .await
            .unwrap()
            .contains("waiting for the stores")
    );
    let m = get(&format!("http://{addr}/metrics"), None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(value(&m, "yampi_sync_schedulers_alive"), Some(0.0), "{m}");
    env.sim.set_faults(Faults::default());
    wait_until("the schedulers", 30, &env, || {
        log_of(&env).contains("Daemon started")
    })
    .await;
    assert_eq!(
        get(&format!("http://{addr}/healthz"), None).await.status(),
        200
    );
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 25), Some(0));
}
