//! A `kind = "batch_edit"` run: one scheduled relative edit (`PUT /catalog/products/batch-edit`),
//! applied at most once per occurrence, and only while the occurrence is fresh.
//!
//! An edit is not idempotent (increment 10 % twice is 21 %). Before the request leaves, the
//! occurrence is recorded as `sending` and made durable (journal and database, see `state`); the
//! answer turns it into `applied` or `not_applied`. When the answer never comes (timeout, dropped
//! connection, 5xx, or a crash while sending), the occurrence is in doubt: it is never retried
//! automatically, the job exits 3, and an operator settles it with
//! `yampi-sync resolve JOB OCCURRENCE --applied|--not-applied`.
//!
//! The current occurrence is the latest scheduled time not after now. One older than the job's
//! `max_lateness` when a run first sees it (a service installed after Black Friday, a daemon that
//! was down) is recorded as `missed` and never sent: that run exits 4 naming it, later runs say
//! so and exit 0.
//!
//! Records are keyed by what the edit is, not by the job's name: a hash of the store alias and
//! the canonical request body, `@`, the occurrence's UTC instant. Renaming the job or changing
//! `timezone` (when the instant stays the same) does not make an applied occurrence look new.
//!
//! It runs on the job driver (`src/pipeline/driver.rs`) as [`BatchEditKind`], without a source
//! file or SKU index: its feed is the occurrence due now and its record (none due, applied or
//! missed: the run is skipped), its interrupted write an occurrence left `sending` or in doubt
//! (exit 3), its plan the edit or the occurrence missed, and its execute stage the one PUT.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::JobSettings;
use crate::config::duration::format_duration;
use crate::config::edit::BatchEdit;
use crate::report::{EXIT_FAILED, EXIT_INVALID, EXIT_REJECTED, RunResult};
use crate::state::{EditRecord, EditState, StateStore};

use super::common::{Fail, fail};
use super::driver::{
    Executed, Fed, FeedInputs, HistoryInputs, JobContext, JobKind, PlanInputs, PlanSummary,
};
use crate::shop::ApiError;

pub const ROUTE: &str = "PUT catalog/products/batch-edit";

/// One occurrence of a batch edit: a scheduled instant, or the single run of a job without a
/// schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// `None` for a job without a schedule (`once`).
    pub at: Option<DateTime<Utc>>,
    /// As messages and `status` show it (and `resolve` accepts): RFC 3339 in the config's zone.
    pub shown: String,
}

impl Occurrence {
    pub fn once() -> Self {
        Self {
            at: None,
            shown: "once".into(),
        }
    }

    fn at(t: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        Self {
            at: Some(t),
            shown: t.with_timezone(&tz).to_rfc3339(),
        }
    }

    /// What `resolve` is given: an RFC 3339 instant in any offset, or `once`.
    pub fn parse(text: &str, tz: chrono_tz::Tz) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("once") {
            return Ok(Self::once());
        }
        DateTime::parse_from_rfc3339(t)
            .map(|d| Self::at(d.with_timezone(&Utc), tz))
            .map_err(|e| {
                format!(
                    "occurrence \"{text}\" is not an RFC 3339 instant such as 2026-11-27T00:00:00-03:00 (as `status` and the log show it) nor `once` ({e})"
                )
            })
    }

    /// The instant part of the record key: UTC, whatever the zone it was scheduled in.
    fn key_part(&self) -> String {
        match self.at {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => "once".into(),
        }
    }
}

/// The occurrence a run now applies: the latest scheduled time not after `now`, in the
/// config's zone, or `once` for a job without a schedule; `None` when none has come yet.
pub fn current_occurrence(
    job: &JobSettings,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<Occurrence> {
    match &job.schedule {
        Some(s) => latest_due(s, tz, now).map(|t| Occurrence::at(t, tz)),
        None => Some(Occurrence::once()),
    }
}

/// The latest time of `schedule` (read in `tz`) not after `now`.
fn latest_due(
    schedule: &cron::Schedule,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&tz);
    // A run that starts exactly on its tick applies that tick.
    let on_tick = schedule
        .after(&(local - chrono::Duration::seconds(1)))
        .next()
        .filter(|t| *t <= local);
    // Walked backwards, `after(now)` yields the times before now, latest first.
    on_tick
        .or_else(|| schedule.after(&local).next_back().filter(|t| *t <= local))
        .map(|t| t.with_timezone(&Utc))
}

/// The key of one occurrence's record.
pub fn record_key(edit: &str, occurrence: &Occurrence) -> String {
    format!("{edit}@{}", occurrence.key_part())
}

/// The record of an occurrence: under its key, else where an earlier version kept it (job
/// name and local occurrence).
fn find_record(
    state: &StateStore,
    key: &str,
    job: &str,
    occurrence: &Occurrence,
) -> Result<Option<EditRecord>, crate::state::StateError> {
    match state.edit_record(key)? {
        Some(r) => Ok(Some(r)),
        None => state.legacy_edit_record(job, &occurrence.shown),
    }
}

fn in_doubt_message(job: &str, occurrence: &str, rec: &EditRecord) -> String {
    format!(
        "occurrence {occurrence} is in doubt (sent at {}, outcome unknown: {}); it will not be sent again until you check the store and run `yampi-sync resolve {job} {occurrence} --applied` or `--not-applied`",
        rec.at.to_rfc3339(),
        rec.message
    )
}

fn missed_message(what: &str, late: chrono::Duration, max_lateness: Duration) -> String {
    format!(
        "{what} was missed: it was due {} ago, more than max_lateness ({}), so it was not sent and never will be (apply it by hand in Yampi if it is still wanted)",
        human_age(late),
        format_duration(max_lateness)
    )
}

/// "3 min", "5 h 10 min", "4 days".
fn human_age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} days", s / 86_400),
    }
}

fn record(state: EditState, job: &str, occurrence: &Occurrence, message: String) -> EditRecord {
    EditRecord {
        v: 1,
        state,
        at: Utc::now(),
        message,
        job: job.to_string(),
        occurrence: occurrence.shown.clone(),
    }
}

/// The batch-edit job kind: one occurrence, one non-idempotent PUT.
pub struct BatchEditKind;

/// The occurrence due now, and what the state store knows of it.
pub struct DueOccurrence {
    occurrence: Occurrence,
    /// The edit and the occurrence, as messages say it.
    what: String,
    key: String,
    record: Option<EditRecord>,
    /// The instant the run takes as now.
    now: DateTime<Utc>,
}

/// What a run does with the due occurrence.
pub enum EditPlan {
    /// Send the edit (described as messages say it).
    Apply(String),
    /// Too late: record it missed, never send it; the sentence that says so.
    Missed(String),
}

impl JobKind for BatchEditKind {
    type Inputs = BatchEdit;
    type Prepared = ();
    type Feed = DueOccurrence;
    type History = ();
    type Plan = EditPlan;

    const INDEX: bool = false;

    fn inputs(job: &JobSettings) -> Result<BatchEdit, Fail> {
        job.edit
            .clone()
            .ok_or_else(|| fail(EXIT_INVALID, "the job has no edit"))
    }

    /// The occurrence due now; none yet, or one already applied or missed, skips the run.
    async fn feed(
        cx: JobContext<'_>,
        at: FeedInputs<'_, Self>,
    ) -> Result<Fed<DueOccurrence>, Fail> {
        let (job, edit, now) = (cx.job, at.inputs, at.now);
        let Some(occurrence) = current_occurrence(job, cx.tz, now) else {
            return Ok(Fed::Skip(format!(
                "{}: no occurrence of the schedule is due yet; nothing sent",
                edit.describe()
            )));
        };
        let what = format!("{} (occurrence {})", edit.describe(), occurrence.shown);
        let key = record_key(&edit.key(&cx.client.store().alias), &occurrence);
        let record = find_record(cx.state, &key, &job.name, &occurrence)
            .map_err(|e| fail(EXIT_FAILED, format!("{what} was not sent: {e}")))?;
        match record.as_ref().map(|r| (r.state, r.at)) {
            Some((EditState::Applied, _)) => Ok(Fed::Skip(format!(
                "{what} was already applied; nothing sent"
            ))),
            Some((EditState::Missed, at)) => Ok(Fed::Skip(format!(
                "{what} was missed (recorded {}); nothing sent",
                at.to_rfc3339()
            ))),
            _ => Ok(Fed::Read(
                DueOccurrence {
                    occurrence,
                    what,
                    key,
                    record,
                    now,
                },
                None,
            )),
        }
    }

    /// An occurrence left `sending` (a run died after recording the intent: the request may have
    /// left) is recorded in doubt; one in doubt stops the job until `resolve` settles it.
    async fn history(cx: JobContext<'_>, at: HistoryInputs<'_, Self>) -> (u64, Result<(), Fail>) {
        let due = at.feed;
        let Some(found) = &due.record else {
            return (0, Ok(()));
        };
        if !matches!(found.state, EditState::Sending | EditState::InDoubt) {
            return (0, Ok(()));
        }
        let (job, shown) = (cx.job, &due.occurrence.shown);
        let mut rec = found.clone();
        if rec.state == EditState::Sending {
            rec.state = EditState::InDoubt;
            rec.message = "the process stopped while sending".into();
            rec.job = job.name.clone();
            rec.occurrence = shown.clone();
            if let Err(e) = cx.state.set_edit_record(&job.name, &due.key, &rec).await {
                tracing::error!(job = %job.name, "cannot record the occurrence as in doubt: {e}");
            }
        }
        (
            0,
            Err(fail(EXIT_FAILED, in_doubt_message(&job.name, shown, &rec))),
        )
    }

    /// Never late: an occurrence past `max_lateness` is missed, whether first seen now or left
    /// not applied by an earlier run.
    fn plan(at: &PlanInputs<'_, Self>) -> EditPlan {
        let due = at.feed;
        if let Some(t) = due.occurrence.at {
            let late = due.now - t;
            let allowed =
                chrono::Duration::from_std(at.job.max_lateness).unwrap_or(chrono::Duration::MAX);
            if late > allowed {
                return EditPlan::Missed(missed_message(&due.what, late, at.job.max_lateness));
            }
        }
        EditPlan::Apply(due.what.clone())
    }

    /// The edit and its occurrence, for the report's batch-edit sheet.
    fn asked(at: &PlanInputs<'_, Self>) -> Option<crate::report::BatchEditAsked> {
        Some(crate::report::BatchEditAsked {
            occurrence: at.feed.occurrence.shown.clone(),
            body: at.inputs.body.clone(),
        })
    }

    fn summarize(plan: &EditPlan) -> Option<PlanSummary> {
        Some(match plan {
            EditPlan::Apply(_) => PlanSummary {
                routes: vec![(ROUTE.to_string(), 1)],
                writes: 1,
                ..PlanSummary::default()
            },
            EditPlan::Missed(_) => PlanSummary::default(),
        })
    }

    fn dry_run_result(plan: &EditPlan, _writes: u64) -> RunResult {
        match plan {
            EditPlan::Apply(what) => RunResult::DryRunApply { what: what.clone() },
            EditPlan::Missed(message) => RunResult::DryRunNote {
                detail: message.clone(),
            },
        }
    }

    /// A missed occurrence is recorded (exit 4); otherwise the edit goes: `sending` recorded
    /// durably before the request, the answer's verdict after it.
    async fn execute(cx: JobContext<'_>, at: &PlanInputs<'_, Self>, plan: EditPlan) -> Executed {
        let (job, state, due) = (cx.job, cx.state, at.feed);
        let (occurrence, what, key) = (&due.occurrence, &due.what, &due.key);
        let shown = &occurrence.shown;
        if let EditPlan::Missed(message) = plan {
            let rec = record(EditState::Missed, &job.name, occurrence, message.clone());
            if let Err(e) = state.set_edit_record(&job.name, key, &rec).await {
                return Executed::failed(fail(
                    EXIT_FAILED,
                    format!("{message}; recording it failed: {e}"),
                ));
            }
            tracing::warn!(job = %job.name, occurrence = %shown, "{message}");
            return Executed {
                message: Some(message),
                exit_code: Some(EXIT_REJECTED),
                ..Executed::default()
            };
        }
        let edit = at.inputs;
        let mut rec = record(EditState::Sending, &job.name, occurrence, String::new());
        if let Err(e) = state.set_edit_record(&job.name, key, &rec).await {
            return Executed::failed(fail(EXIT_FAILED, format!("{what} was not sent: {e}")));
        }
        tracing::info!(job = %job.name, occurrence = %shown, "Applying {}", edit.describe());
        let result = cx.client.batch_edit(&edit.body).await;
        let (state_now, message) = match &result {
            Ok(()) => (EditState::Applied, format!("applied {what}")),
            // The server answered 2xx with an unexpected body: it took the request.
            Err(ApiError::Decode { .. }) => (EditState::Applied, format!("applied {what}")),
            Err(ApiError::Status { .. }) => (
                EditState::NotApplied,
                format!("{what} was refused: {}", result.as_ref().unwrap_err()),
            ),
            Err(ApiError::Exhausted {
                maybe_applied: false,
                ..
            }) => (
                EditState::NotApplied,
                format!("{what} was not sent: {}", result.as_ref().unwrap_err()),
            ),
            Err(e @ ApiError::Exhausted { .. }) => (EditState::InDoubt, e.to_string()),
        };
        rec.state = state_now;
        rec.message = message.clone();
        if let Err(e) = state.set_edit_record(&job.name, key, &rec).await {
            tracing::error!(job = %job.name, "cannot record the edit's outcome: {e}");
        }
        match state_now {
            EditState::Applied => {
                let mut done = Executed {
                    message: Some(message),
                    ..Executed::default()
                };
                done.sent.written = 1;
                done
            }
            EditState::InDoubt => {
                Executed::failed(fail(EXIT_FAILED, in_doubt_message(&job.name, shown, &rec)))
            }
            _ => Executed::failed(fail(EXIT_FAILED, message)),
        }
    }
}

/// `resolve`: an operator's verdict on an occurrence in doubt. `occurrence` is what `status` and
/// the log show, or the same instant in any offset.
pub async fn resolve(
    state: &StateStore,
    job: &JobSettings,
    tz: chrono_tz::Tz,
    alias: &str,
    occurrence: &str,
    applied: bool,
) -> Result<String, String> {
    let name = &job.name;
    let occ = Occurrence::parse(occurrence, tz)?;
    let Some(edit) = &job.edit else {
        return Err(format!("job {name} has no edit"));
    };
    let key = record_key(&edit.key(alias), &occ);
    // An earlier version keyed by the local time as it printed it: try what was typed too.
    let rec = match find_record(state, &key, name, &occ).map_err(|e| e.to_string())? {
        Some(r) => Some(r),
        None => state
            .legacy_edit_record(name, occurrence.trim())
            .map_err(|e| e.to_string())?,
    };
    let rec = rec.ok_or_else(|| {
        format!("job {name} has no record of occurrence {occurrence} of its current edit")
    })?;
    if !matches!(rec.state, EditState::Sending | EditState::InDoubt) {
        return Err(format!(
            "occurrence {occurrence} of job {name} is not in doubt (it is {:?}); nothing to settle",
            rec.state
        ));
    }
    let new = record(
        if applied {
            EditState::Applied
        } else {
            EditState::NotApplied
        },
        name,
        &occ,
        format!(
            "settled by the operator as {} (was in doubt: {})",
            if applied { "applied" } else { "not applied" },
            rec.message
        ),
    );
    state
        .set_edit_record(name, &key, &new)
        .await
        .map_err(|e| e.to_string())?;
    Ok(if applied {
        format!(
            "occurrence {occurrence} of job {name} is recorded as applied; it will not be sent again"
        )
    } else {
        format!(
            "occurrence {occurrence} of job {name} is recorded as not applied; the next run sends it if it is still within max_lateness ({}), else records it as missed",
            format_duration(job.max_lateness)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_is_the_content_and_the_utc_instant() {
        let a = json!({"attribute": "price_sale", "value": 10, "restrictions": {"include": {"brands_ids": [1]}}});
        let b = json!({"restrictions": {"include": {"brands_ids": [1]}}, "value": 10, "attribute": "price_sale"});
        let key = |alias: &str, body: &serde_json::Value| {
            crate::config::edit::BatchEdit { body: body.clone() }.key(alias)
        };
        assert_eq!(key("loja", &a), key("loja", &b));
        assert_ne!(key("loja", &a), key("outra", &a));
        let c = json!({"attribute": "price_sale", "value": 11, "restrictions": {"include": {"brands_ids": [1]}}});
        assert_ne!(key("loja", &a), key("loja", &c));
        let sp = chrono_tz::America::Sao_Paulo;
        let x = Occurrence::parse("2026-11-27T00:00:00-03:00", sp).unwrap();
        let y = Occurrence::parse("2026-11-27T03:00:00Z", chrono_tz::UTC).unwrap();
        assert_eq!(record_key("e", &x), record_key("e", &y));
        assert_eq!(record_key("e", &x), "e@2026-11-27T03:00:00Z");
        assert_eq!(x.shown, "2026-11-27T00:00:00-03:00");
        assert!(Occurrence::parse("27/11/2026", sp).is_err());
        assert_eq!(Occurrence::parse("once", sp).unwrap(), Occurrence::once());
    }

    #[test]
    fn the_due_occurrence_is_the_latest_not_after_now() {
        let utc = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let bf = crate::config::parse_schedule("0 0 0 27 11 *").unwrap();
        let sp = chrono_tz::America::Sao_Paulo;
        let due = |now: &str| latest_due(&bf, sp, utc(now));
        assert_eq!(
            due("2026-12-01T12:00:00Z"),
            Some(utc("2026-11-27T03:00:00Z"))
        );
        assert_eq!(
            due("2026-11-27T03:00:00Z"),
            Some(utc("2026-11-27T03:00:00Z"))
        );
        assert_eq!(
            due("2026-11-27T02:59:59Z"),
            Some(utc("2025-11-27T03:00:00Z"))
        );
        let every_10 = crate::config::parse_schedule("*/10 * * * *").unwrap();
        assert_eq!(
            latest_due(&every_10, sp, utc("2026-12-01T12:07:30Z")),
            Some(utc("2026-12-01T12:00:00Z"))
        );
    }
}
