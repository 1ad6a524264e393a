//! The commands of README.md (Commands), each returning its exit code.

use std::io::IsTerminal;
use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config;
use crate::pipeline::{self, RunOptions};
use crate::report::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, worst_exit};
use crate::runtime::{load_settings, open_runtime, open_state};
use crate::state::StateStore;

pub async fn main(cli: Cli) -> i32 {
    match &cli.command {
        Some(Command::Check { offline }) => {
            check(&cli.config, cli.state_dir.as_deref(), *offline).await
        }
        Some(Command::Status { json }) => status(&cli.config, cli.state_dir.as_deref(), *json),
        Some(Command::Explain { job, key, json }) => {
            crate::explain::run(&cli.config, cli.state_dir.as_deref(), job, key, *json)
        }
        Some(Command::Demo) => crate::demo::run(cli.state_dir.as_deref()).await,
        Some(Command::Init {
            from,
            dir,
            sheet,
            kind,
            key,
            quantity,
            price,
            alias,
        }) => crate::init::run(&crate::init::InitOptions {
            from: from.clone(),
            dir: dir.clone(),
            sheet: sheet.clone(),
            kind: *kind,
            key: key.clone(),
            quantity: quantity.clone(),
            price: price.clone(),
            alias: alias.clone(),
        }),
        Some(Command::Completions { shell }) => {
            crate::cli::write_completions(*shell, &mut std::io::stdout());
            EXIT_OK
        }
        Some(Command::Man) => match crate::cli::write_man(&mut std::io::stdout()) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("error: cannot write the man page: {e}");
                EXIT_FAILED
            }
        },
        Some(Command::Resolve {
            job,
            occurrence,
            applied,
            ..
        }) => {
            resolve(
                &cli.config,
                cli.state_dir.as_deref(),
                job,
                occurrence,
                *applied,
            )
            .await
        }
        None if cli.run_once => {
            // SIGTERM/SIGINT: requests in flight finish and are checkpointed, nothing new starts.
            let cancel = tokio_util::sync::CancellationToken::new();
            let on_signal = cancel.clone();
            tokio::spawn(async move {
                crate::daemon::shutdown_signal().await;
                tracing::warn!(
                    "Stopping: requests in flight finish, the rest waits for the next run"
                );
                on_signal.cancel();
                crate::daemon::shutdown_signal().await;
                std::process::exit(EXIT_FAILED);
            });
            let opts = RunOptions {
                dry_run: cli.dry_run,
                full: cli.full,
                jobs: cli.jobs.clone(),
                progress: std::io::stderr().is_terminal(),
                cancel: Some(cancel),
                now: None,
                publish: None,
                publish_configured: false,
            };
            run_once(&cli.config, cli.state_dir.as_deref(), &opts).await
        }
        None => {
            let grace = std::time::Duration::from_secs(cli.grace_secs);
            crate::daemon::run(&cli.config, cli.state_dir.as_deref(), grace).await
        }
    }
}

pub async fn run_once(config_path: &Path, state_dir: Option<&Path>, opts: &RunOptions) -> i32 {
    let Some(settings) = load_settings(config_path, state_dir) else {
        return EXIT_INVALID;
    };
    let unknown: Vec<&String> = opts
        .jobs
        .iter()
        .filter(|n| !settings.jobs.iter().any(|j| &&j.name == n))
        .collect();
    if !unknown.is_empty() {
        for n in unknown {
            eprintln!("error: no job named \"{n}\" in {}", config_path.display());
        }
        return EXIT_INVALID;
    }
    let (state, clients) = match open_runtime(&settings) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // The file server runs for as long as this run may publish or watch an import.
    let publish = match start_publish(&settings, opts).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let with_server = RunOptions {
        publish: publish.clone(),
        ..opts.clone()
    };
    let reports = pipeline::run_once(&settings, &state, &clients, &with_server).await;
    if let Some(p) = publish {
        p.shutdown().await;
    }
    for r in &reports {
        if r.dry_run {
            println!("plan for job {}:", r.job);
            let changes = r.change_lines(crate::report::SHOWN_LINES);
            if !changes.is_empty() {
                println!("  would change:");
                for line in changes {
                    println!("    {line}");
                }
            }
            for (route, n) in &r.plan {
                println!("  {n:>6} × {route}");
            }
            println!(
                "  ETA under the rate limits: {}",
                crate::util::human_secs(r.plan_eta_secs)
            );
        }
        println!("{}", r.summary_line());
        for line in r.reason_lines(crate::report::SHOWN_LINES) {
            println!("  {line}");
        }
    }
    worst_exit(reports.iter().map(|r| r.exit_code))
}

/// Starts the `[publish]` file server when the config has one and a price job of this run could
/// import (or resume an import); never for a dry run, which sends nothing.
pub async fn start_publish(
    settings: &config::Settings,
    opts: &RunOptions,
) -> Result<Option<crate::publish::PublishServer>, i32> {
    let Some(p) = &settings.publish else {
        return Ok(None);
    };
    let wanted = !opts.dry_run
        && settings.jobs.iter().any(|j| {
            j.kind == config::JobKind::Price
                && j.route != config::PriceRoute::Api
                && (opts.jobs.is_empty() || opts.jobs.contains(&j.name))
        });
    if !wanted {
        return Ok(None);
    }
    match crate::publish::PublishServer::start(p, settings.state_dir.join("publish")).await {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            eprintln!("error: {e}; nothing was sent");
            Err(EXIT_FAILED)
        }
    }
}

/// `check`: every problem in config, mappings and sources at once; sends nothing.
pub async fn check(config_path: &Path, state_dir: Option<&Path>, offline: bool) -> i32 {
    let mut problems: Vec<String> = Vec::new();
    let settings = match config::load(config_path, state_dir) {
        Ok(s) => Some(s),
        Err(e) => {
            problems.extend(e.0);
            // Still look at the sources of the jobs that did validate.
            let text = std::fs::read_to_string(config_path).unwrap_or_default();
            let mut ignored = Vec::new();
            config::from_str(&text, config_path, state_dir, &mut ignored)
        }
    };
    let mut warnings = Vec::new();
    if let Some(s) = &settings {
        warnings.extend(s.warnings.iter().cloned());
        if let Some(p) = &s.publish {
            match crate::publish::probe_listen(p, &s.state_dir, config_path) {
                Ok(w) => warnings.extend(w),
                Err(e) => problems.push(e),
            }
        }
        for job in &s.jobs {
            let (Some(src), Some(mapping)) = (&job.source, &job.mapping) else {
                continue;
            };
            match crate::source::pick_newest(&src.path, std::time::Duration::ZERO) {
                Ok(p) => match p.path {
                    None => warnings.push(format!(
                        "job {}: no file matches {} yet (columns not checked)",
                        job.name, src.path
                    )),
                    Some(path) => {
                        match crate::source::open(&path, src.format, src.sheet.as_deref()) {
                            Ok(opened) => {
                                let cols = match job.kind {
                                    crate::config::JobKind::Price => mapping.price_columns(),
                                    crate::config::JobKind::Audit => mapping.audit_columns(),
                                    _ => mapping.stock_columns(),
                                };
                                let wanted: Vec<&str> = cols.iter().map(String::as_str).collect();
                                if let Err(e) = opened.resolve(&wanted) {
                                    problems.push(format!("job {}: {e}", job.name));
                                }
                            }
                            Err(e) => problems.push(format!("job {}: {e}", job.name)),
                        }
                    }
                },
                Err(e) => problems.push(format!("job {}: {e}", job.name)),
            }
        }
    }
    if let Some(s) = &settings {
        compare_import_templates(s, &mut problems, &mut warnings);
    }
    // Only a config that validated is worth asking the store about.
    if !offline
        && problems.is_empty()
        && let Some(s) = &settings
    {
        let found = crate::check_online::check_stores(s).await;
        problems.extend(found.problems);
        warnings.extend(found.warnings);
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    if problems.is_empty() {
        let (stores, jobs) = settings
            .as_ref()
            .map(|s| (s.stores.len(), s.jobs.len()))
            .unwrap_or_default();
        println!(
            "{}: OK ({stores} store(s), {jobs} job(s))",
            config_path.display()
        );
        EXIT_OK
    } else {
        for p in &problems {
            println!("error: {p}");
        }
        println!("{} problem(s) found; nothing was sent", problems.len());
        EXIT_INVALID
    }
}

/// `check`: each job's `import_template` against the SKU export header kept in the state store
/// (when there is one; a state dir that does not exist yet is not created).
fn compare_import_templates(
    s: &config::Settings,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let jobs: Vec<_> = s
        .jobs
        .iter()
        .filter(|j| j.import_template.as_ref().is_some_and(|p| p.is_file()))
        .collect();
    if jobs.is_empty() || !s.state_dir.join("db").exists() {
        return;
    }
    let state = match StateStore::open(&s.state_dir) {
        Ok(state) => state,
        Err(e) => {
            warnings.push(format!(
                "import_template not compared with the stored SKU export header: {e}"
            ));
            return;
        }
    };
    for job in jobs {
        match crate::pipeline::import::check_template(&state, job, &job.store) {
            Ok(Some(same)) => println!("{same}"),
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
}

pub async fn resolve(
    config_path: &Path,
    state_dir: Option<&Path>,
    job: &str,
    occurrence: &str,
    applied: bool,
) -> i32 {
    let Some(settings) = load_settings(config_path, state_dir) else {
        return EXIT_INVALID;
    };
    let Some(job) = settings
        .jobs
        .iter()
        .find(|j| j.name == job && j.kind == crate::config::JobKind::BatchEdit)
    else {
        eprintln!(
            "error: no batch_edit job named \"{job}\" in {}",
            config_path.display()
        );
        return EXIT_INVALID;
    };
    let alias = settings
        .store(&job.store)
        .map(|s| s.alias.clone())
        .unwrap_or_default();
    let state = match open_state(&settings.state_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match crate::pipeline::batch_edit::resolve(
        &state,
        job,
        settings.timezone,
        &alias,
        occurrence,
        applied,
    )
    .await
    {
        Ok(msg) => {
            println!("{msg}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INVALID
        }
    }
}

pub fn status(config_path: &Path, state_dir: Option<&Path>, json: bool) -> i32 {
    let Some(settings) = load_settings(config_path, state_dir) else {
        return EXIT_INVALID;
    };
    let (rows, note) = match StateStore::open(&settings.state_dir) {
        Ok(state) => (crate::status::rows(&settings, &state), None),
        // A daemon holds the store: read the picture it keeps up to date.
        Err(crate::state::StateError::Locked { pid, .. }) => {
            match crate::status::read_snapshot(&settings.state_dir) {
                Some(snap) => (
                    snap["jobs"].as_array().cloned().unwrap_or_default(),
                    Some(format!(
                        "(from the running process {}, as of {})",
                        snap["pid"],
                        crate::status::local_time(
                            snap["generated_at"].as_str().unwrap_or("?"),
                            settings.timezone
                        )
                    )),
                ),
                // Nothing is recorded until the holder's first run ends.
                None => (
                    crate::status::unrecorded_rows(&settings),
                    Some(format!(
                        "(the state dir {} is held by a running yampi-sync process{pid}, which has not finished a run yet: nothing is recorded until its first run ends)",
                        settings.state_dir.display()
                    )),
                ),
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return EXIT_OK;
    }
    if let Some(n) = note {
        println!("{n}");
    }
    crate::status::print(&rows, settings.timezone);
    EXIT_OK
}
