//! A `kind = "batch_edit"` run: one scheduled relative edit (`PUT /catalog/products/batch-edit`),
//! applied at most once per occurrence.
//!
//! An edit is not idempotent (increment 10 % twice is 21 %). Before the request leaves, the
//! occurrence is recorded as `sending` and made durable; the answer turns it into `applied` or
//! `not_applied`. When the answer never comes (timeout, dropped connection, 5xx, or a crash
//! while sending), the occurrence is in doubt: it is never retried automatically, the job exits
//! 3, and an operator settles it with `yampi-sync resolve JOB OCCURRENCE --applied|--not-applied`.

use chrono::{DateTime, Utc};

use crate::config::JobSettings;
use crate::report::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, RunReport};
use crate::shop::{ApiError, ShopClient};
use crate::state::{EditRecord, EditState, StateStore};

use super::RunOptions;

pub const ROUTE: &str = "PUT catalog/products/batch-edit";

/// The occurrence a run now applies: the latest scheduled time not after `now`, in the
/// config's zone (RFC 3339), or `once` for a job without a schedule.
pub fn current_occurrence(job: &JobSettings, tz: chrono_tz::Tz, now: DateTime<Utc>) -> String {
    match &job.schedule {
        Some(s) => {
            let local = now.with_timezone(&tz);
            match s.after(&local).next_back() {
                Some(t) if t <= local => t.to_rfc3339(),
                // No past occurrence: the first one to come is the current one.
                _ => s
                    .after(&local)
                    .next()
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "once".into()),
            }
        }
        None => "once".into(),
    }
}

fn in_doubt_message(job: &str, occurrence: &str, rec: &EditRecord) -> String {
    format!(
        "occurrence {occurrence} is in doubt (sent at {}, outcome unknown: {}); it will not be sent again until you check the store and run `yampi-sync resolve {job} {occurrence} --applied` or `--not-applied`",
        rec.at.to_rfc3339(),
        rec.message
    )
}

pub async fn run(
    job: &JobSettings,
    tz: chrono_tz::Tz,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    report: &mut RunReport,
) {
    let Some(edit) = &job.edit else {
        report.exit_code = EXIT_INVALID;
        report.message = "the job has no edit".into();
        return;
    };
    let occurrence = current_occurrence(job, tz, Utc::now());
    let what = format!("{} (occurrence {occurrence})", edit.describe());
    report.plan = vec![(ROUTE.to_string(), 1)];
    let record = match state.edit_record(&job.name, &occurrence) {
        Ok(r) => r,
        Err(e) => {
            report.exit_code = EXIT_FAILED;
            report.message = e.to_string();
            return;
        }
    };
    match record.as_ref().map(|r| r.state) {
        Some(EditState::Applied) => {
            report.skipped = true;
            report.exit_code = EXIT_OK;
            report.message = format!("{what} was already applied; nothing sent");
            return;
        }
        Some(EditState::Sending | EditState::InDoubt) => {
            let mut rec = record.expect("present");
            if rec.state == EditState::Sending {
                // A run died after recording the intent: the request may have left.
                rec.state = EditState::InDoubt;
                rec.message = "the process stopped while sending".into();
                let _ = state.set_edit_record(&job.name, &occurrence, &rec).await;
            }
            report.exit_code = EXIT_FAILED;
            report.message = in_doubt_message(&job.name, &occurrence, &rec);
            return;
        }
        Some(EditState::NotApplied) | None => {}
    }
    if opts.dry_run {
        report.exit_code = EXIT_OK;
        report.message = format!("dry run: would apply {what}");
        return;
    }
    let mut rec = EditRecord {
        v: 1,
        state: EditState::Sending,
        at: Utc::now(),
        message: String::new(),
    };
    if let Err(e) = state.set_edit_record(&job.name, &occurrence, &rec).await {
        report.exit_code = EXIT_FAILED;
        report.message = format!("not sent: {e}");
        return;
    }
    tracing::info!(job = %job.name, occurrence = %occurrence, "Applying {}", edit.describe());
    let result = client.batch_edit(&edit.body).await;
    let (state_now, code, message) = match &result {
        Ok(()) => (EditState::Applied, EXIT_OK, format!("applied {what}")),
        // The server answered 2xx with an unexpected body: it took the request.
        Err(ApiError::Decode { .. }) => (EditState::Applied, EXIT_OK, format!("applied {what}")),
        Err(ApiError::Status { .. }) => (
            EditState::NotApplied,
            EXIT_FAILED,
            format!("{what} was refused: {}", result.as_ref().unwrap_err()),
        ),
        Err(ApiError::Exhausted {
            maybe_applied: false,
            ..
        }) => (
            EditState::NotApplied,
            EXIT_FAILED,
            format!("{what} was not sent: {}", result.as_ref().unwrap_err()),
        ),
        Err(e @ ApiError::Exhausted { .. }) => (EditState::InDoubt, EXIT_FAILED, e.to_string()),
    };
    rec.state = state_now;
    rec.message = message.clone();
    if let Err(e) = state.set_edit_record(&job.name, &occurrence, &rec).await {
        tracing::error!(job = %job.name, "cannot record the edit's outcome: {e}");
    }
    report.exit_code = code;
    report.message = if state_now == EditState::InDoubt {
        in_doubt_message(&job.name, &occurrence, &rec)
    } else {
        message
    };
    if state_now == EditState::Applied {
        report.products_written = 1;
    }
}

/// `resolve`: an operator's verdict on an occurrence in doubt.
pub async fn resolve(
    state: &StateStore,
    job: &str,
    occurrence: &str,
    applied: bool,
) -> Result<String, String> {
    let rec = state
        .edit_record(job, occurrence)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("job {job} has no record of occurrence {occurrence}"))?;
    if !matches!(rec.state, EditState::Sending | EditState::InDoubt) {
        return Err(format!(
            "occurrence {occurrence} of job {job} is not in doubt (it is {:?}); nothing to settle",
            rec.state
        ));
    }
    let new = EditRecord {
        v: 1,
        state: if applied {
            EditState::Applied
        } else {
            EditState::NotApplied
        },
        at: Utc::now(),
        message: format!(
            "settled by the operator as {} (was in doubt: {})",
            if applied { "applied" } else { "not applied" },
            rec.message
        ),
    };
    state
        .set_edit_record(job, occurrence, &new)
        .await
        .map_err(|e| e.to_string())?;
    Ok(if applied {
        format!(
            "occurrence {occurrence} of job {job} is recorded as applied; it will not be sent again"
        )
    } else {
        format!(
            "occurrence {occurrence} of job {job} is recorded as not applied; the next run sends it"
        )
    })
}
