//! The commands of SPEC §1, each returning its exit code.

use std::io::IsTerminal;
use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config::{self, Settings};
use crate::pipeline::{self, RunOptions};
use crate::report::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, worst_exit};
use crate::state::StateStore;

pub async fn main(cli: Cli) -> i32 {
    match &cli.command {
        Some(Command::Check) => check(&cli.config, cli.state_dir.as_deref()),
        Some(Command::Status { json }) => status(&cli.config, cli.state_dir.as_deref(), *json),
        Some(Command::Demo) => crate::demo::run(cli.state_dir.as_deref()).await,
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
            let opts = RunOptions {
                dry_run: cli.dry_run,
                full: cli.full,
                jobs: cli.jobs.clone(),
                progress: std::io::stderr().is_terminal(),
            };
            run_once(&cli.config, cli.state_dir.as_deref(), &opts).await
        }
        None => crate::daemon::run(&cli.config, cli.state_dir.as_deref()).await,
    }
}

/// Loads the config, printing every problem; `None` means exit 2.
pub fn load_settings(path: &Path, state_dir: Option<&Path>) -> Option<Settings> {
    match config::load(path, state_dir) {
        Ok(s) => {
            for w in &s.warnings {
                tracing::warn!("{w}");
            }
            Some(s)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

/// Opens the state store, printing the one-sentence reason when it cannot.
pub fn open_state(dir: &Path) -> Result<StateStore, i32> {
    StateStore::open(dir).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_FAILED
    })
}

/// The state store and one API client per store: what running jobs needs beyond the config.
pub fn open_runtime(settings: &Settings) -> Result<(StateStore, pipeline::Clients), i32> {
    let state = open_state(&settings.state_dir)?;
    let clients = pipeline::clients(settings).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_FAILED
    })?;
    Ok((state, clients))
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
    let reports = pipeline::run_once(&settings, &state, &clients, opts).await;
    for r in &reports {
        if r.dry_run {
            println!("plan for job {}:", r.job);
            for (route, n) in &r.plan {
                println!("  {n:>6} × {route}");
            }
            println!(
                "  ETA under the rate limits: {}",
                crate::util::human_secs(r.plan_eta_secs)
            );
        }
        println!("{}", r.summary_line());
    }
    worst_exit(reports.iter().map(|r| r.exit_code))
}

/// `check`: every problem in config, mappings and sources at once; sends nothing.
pub fn check(config_path: &Path, state_dir: Option<&Path>) -> i32 {
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
    if !settings
        .jobs
        .iter()
        .any(|j| j.name == job && j.kind == crate::config::JobKind::BatchEdit)
    {
        eprintln!(
            "error: no batch_edit job named \"{job}\" in {}",
            config_path.display()
        );
        return EXIT_INVALID;
    }
    let state = match open_state(&settings.state_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match crate::pipeline::batch_edit::resolve(&state, job, occurrence, applied).await {
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
    let state = match open_state(&settings.state_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut rows = Vec::new();
    for job in &settings.jobs {
        let last = state.last_run(&job.name).ok().flatten();
        let next = job
            .schedule
            .as_ref()
            .and_then(|s| s.upcoming(settings.timezone).next().map(|t| t.to_rfc3339()));
        let pending = state.intents_load(&job.name).map(|m| m.len()).unwrap_or(0)
            + state
                .price_intents_load(&job.name)
                .map(|m| m.len())
                .unwrap_or(0);
        let in_doubt: Vec<serde_json::Value> = state
            .edits_in_doubt(&job.name)
            .unwrap_or_default()
            .into_iter()
            .map(|(occ, rec)| {
                serde_json::json!({"occurrence": occ, "sent_at": rec.at, "message": rec.message})
            })
            .collect();
        rows.push(serde_json::json!({
            "job": job.name,
            "kind": job.kind.as_str(),
            "store": job.store,
            "last_run": last,
            "next_run": next,
            "writes_in_doubt": pending,
            "edits_in_doubt": in_doubt,
        }));
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return EXIT_OK;
    }
    for r in rows {
        let job = r["job"].as_str().unwrap_or_default();
        match r.get("last_run").filter(|v| !v.is_null()) {
            Some(l) => println!(
                "{job}: last run {} ({} ms), exit {}, {} changed, {} rejected, {} unmatched — {}{}",
                l["started_at"].as_str().unwrap_or("?"),
                l["duration_ms"],
                l["exit_code"],
                l["changed"],
                l["rejected"],
                l["unmatched"],
                l["message"].as_str().unwrap_or(""),
                l["report"]
                    .as_str()
                    .map(|p| format!(", report {p}"))
                    .unwrap_or_default()
            ),
            None => println!("{job}: never run"),
        }
        if let Some(n) = r["next_run"].as_str() {
            println!("  next run: {n}");
        }
        for d in r["edits_in_doubt"].as_array().into_iter().flatten() {
            let occ = d["occurrence"].as_str().unwrap_or("?");
            println!(
                "  IN DOUBT: occurrence {occ} (sent {}) — check the store, then `yampi-sync resolve {job} {occ} --applied` or `--not-applied`",
                d["sent_at"].as_str().unwrap_or("?")
            );
        }
        if r["writes_in_doubt"].as_u64().unwrap_or(0) > 0 {
            println!(
                "  {} write(s) interrupted; the next run checks them against the store",
                r["writes_in_doubt"]
            );
        }
    }
    EXIT_OK
}
