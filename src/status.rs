//! What `status` shows: per job, the last run, the next run, interrupted writes, pending import
//! queues, and batch edit occurrences in doubt or missed.
//!
//! The state store can be open in one process only, so every run also writes the same picture
//! to `state_dir/status.json` (temporary file, then rename); `status` reads the store when it is
//! free and that snapshot while a daemon holds it.

use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};

use crate::config::{JobSettings, Settings};
use crate::state::{EditRecord, EditState, StateStore};

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
            let pending = state
                .ledger(&job.name)
                .and_then(|l| l.pending())
                .map(|ops| {
                    ops.iter()
                        .filter(|op| {
                            !matches!(
                                op.kind,
                                crate::state::OpKind::BatchEdit | crate::state::OpKind::ImportLine
                            )
                        })
                        .count()
                })
                .unwrap_or(0);
            let (in_doubt, missed, edits_error) = edit_occurrences(settings, job, state);
            let queues = crate::pipeline::import::pending_queues(state, &[job.name.as_str()]);
            json!({
                "job": job.name,
                "kind": job.kind.as_str(),
                "store": job.store,
                "schedule": job.schedule_text,
                "last_run": last,
                "next_run": next,
                "writes_in_doubt": pending,
                "edits_in_doubt": in_doubt,
                "edits_missed": missed,
                "edits_error": edits_error,
                "pending_queues": queues,
            })
        })
        .collect()
}

/// A batch edit job's occurrences in doubt and missed (records are keyed by the edit's
/// content, so a renamed job still finds its own), and why they could not be read, if so.
fn edit_occurrences(
    settings: &Settings,
    job: &JobSettings,
    state: &StateStore,
) -> (Vec<Value>, Vec<Value>, Option<String>) {
    let (mut in_doubt, mut missed) = (Vec::new(), Vec::new());
    let alias = settings.store(&job.store).map(|s| s.alias.as_str());
    let Some(prefix) = alias.and_then(|a| job.edit.as_ref().map(|e| format!("{}@", e.key(a))))
    else {
        return (in_doubt, missed, None);
    };
    let records = match state.edit_records(&prefix) {
        Ok(r) => r,
        Err(e) => return (in_doubt, missed, Some(e.to_string())),
    };
    let legacy = state.legacy_edits_in_doubt(&job.name).unwrap_or_default();
    let occurrence = |key: &str, rec: &EditRecord| {
        if rec.occurrence.is_empty() {
            key.rsplit('@').next().unwrap_or(key).to_string()
        } else {
            rec.occurrence.clone()
        }
    };
    for (key, rec) in &records {
        let occ = occurrence(key, rec);
        match rec.state {
            EditState::Sending | EditState::InDoubt => {
                in_doubt.push(json!({"occurrence": occ, "sent_at": rec.at, "message": rec.message}))
            }
            EditState::Missed => missed
                .push(json!({"occurrence": occ, "recorded_at": rec.at, "message": rec.message})),
            EditState::Applied | EditState::NotApplied => {}
        }
    }
    for (occ, rec) in legacy {
        in_doubt.push(json!({"occurrence": occ, "sent_at": rec.at, "message": rec.message}));
    }
    (in_doubt, missed, None)
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

/// The rows of jobs with nothing recorded yet: a process holds the state dir and has written
/// no snapshot, which happens during its first run.
pub fn unrecorded_rows(settings: &Settings) -> Vec<Value> {
    settings
        .jobs
        .iter()
        .map(|job| {
            json!({
                "job": job.name,
                "kind": job.kind.as_str(),
                "store": job.store,
                "schedule": job.schedule_text,
                "last_run": Value::Null,
                "next_run": Value::Null,
                "writes_in_doubt": 0,
                "edits_in_doubt": [],
                "edits_missed": [],
                "edits_error": Value::Null,
            })
        })
        .collect()
}

/// An RFC 3339 instant as local time in `tz` ("2026-12-01 10:26:23 -03"), so every time `status`
/// prints is in the zone the schedules are read in; anything else is shown as it is.
pub fn local_time(text: &str, tz: chrono_tz::Tz) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => text.to_string(),
    }
}

/// The human form of `rows`, every time in `tz`.
pub fn print(rows: &[Value], tz: chrono_tz::Tz) {
    let at = |v: &Value| local_time(v.as_str().unwrap_or("?"), tz);
    for r in rows {
        let job = r["job"].as_str().unwrap_or_default();
        match r.get("last_run").filter(|v| !v.is_null()) {
            Some(l) => println!(
                "{job}: last run {} ({} ms), exit {}, {} changed, {} rejected, {} unmatched — {}{}",
                at(&l["started_at"]),
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
            println!("  next run: {}", local_time(n, tz));
        }
        for d in r["edits_in_doubt"].as_array().into_iter().flatten() {
            let occ = d["occurrence"].as_str().unwrap_or("?");
            println!(
                "  IN DOUBT: occurrence {occ} (sent {}) — check the store, then `yampi-sync resolve {job} {occ} --applied` or `--not-applied`",
                at(&d["sent_at"])
            );
        }
        for m in r["edits_missed"].as_array().into_iter().flatten() {
            println!(
                "  MISSED: occurrence {} (recorded {}) — not sent, and never will be",
                m["occurrence"].as_str().unwrap_or("?"),
                at(&m["recorded_at"])
            );
        }
        if let Some(e) = r["edits_error"].as_str() {
            println!("  BATCH EDIT RECORDS UNREADABLE: {e}");
        }
        for q in r["pending_queues"].as_array().into_iter().flatten() {
            println!(
                "  PENDING QUEUE: {} queue {} since {}, {} line(s) sent, {} processed ({}) — the next run resumes watching it",
                q["kind"].as_str().unwrap_or("?"),
                q["queue_id"]
                    .as_u64()
                    .map_or("not found yet".to_string(), |id| id.to_string()),
                q["since"].as_str().unwrap_or("?"),
                q["lines_sent"],
                q["lines_processed"],
                q["file"].as_str().unwrap_or("?"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_shown_in_the_configured_zone() {
        let tz = chrono_tz::America::Sao_Paulo;
        assert_eq!(
            local_time("2026-12-01T13:26:23.123456789Z", tz),
            "2026-12-01 10:26:23 -03"
        );
        assert_eq!(
            local_time("2026-12-01T10:30:00-03:00", tz),
            "2026-12-01 10:30:00 -03"
        );
        assert_eq!(local_time("?", tz), "?");
    }
}
