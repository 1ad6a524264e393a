//! What `status` shows: per job, the last run, the next run, interrupted writes and batch edits
//! in doubt.
//!
//! The state store can be open in one process only, so every run also writes the same picture
//! to `state_dir/status.json` (temporary file, then rename); `status` reads the store when it is
//! free and that snapshot while a daemon holds it.

use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::state::StateStore;

pub const SNAPSHOT: &str = "status.json";

/// One object per job, in config order.
pub fn rows(settings: &Settings, state: &StateStore) -> Vec<Value> {
    settings
        .jobs
        .iter()
        .map(|job| {
            let last = state.last_run(&job.name).ok().flatten();
            let next = job
                .schedule
                .as_ref()
                .and_then(|s| s.upcoming(settings.timezone).next())
                .map(|t| t.to_rfc3339());
            let pending = state.intents_load(&job.name).map(|m| m.len()).unwrap_or(0)
                + state
                    .price_intents_load(&job.name)
                    .map(|m| m.len())
                    .unwrap_or(0);
            let in_doubt: Vec<Value> = state
                .edits_in_doubt(&job.name)
                .unwrap_or_default()
                .into_iter()
                .map(|(occ, rec)| {
                    json!({"occurrence": occ, "sent_at": rec.at, "message": rec.message})
                })
                .collect();
            json!({
                "job": job.name,
                "kind": job.kind.as_str(),
                "store": job.store,
                "schedule": job.schedule_text,
                "last_run": last,
                "next_run": next,
                "writes_in_doubt": pending,
                "edits_in_doubt": in_doubt,
            })
        })
        .collect()
}

/// Writes `status.json` for `status` to read while this process holds the store.
pub fn write_snapshot(settings: &Settings, state: &StateStore) {
    let body = json!({ "generated_at": Utc::now(), "pid": std::process::id(), "jobs": rows(settings, state) });
    let path = settings.state_dir.join(SNAPSHOT);
    let tmp = settings.state_dir.join(format!("{SNAPSHOT}.tmp"));
    // Messages come from the API and earlier runs: no credential may reach the file.
    let text = crate::config::secret::scrubber(settings).scrub(&body.to_string());
    let written = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

pub fn read_snapshot(state_dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(state_dir.join(SNAPSHOT)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The human form of `rows`.
pub fn print(rows: &[Value]) {
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
}
