//! Panic containment: a panic inside a job becomes that run's failure instead of killing the
//! process (one-shot) or silently ending the job's task (daemon).
//!
//! Also the hidden switch the tests use to reach these paths, since validated input no longer
//! panics: `YAMPI_SYNC_TESTING_ONLY_INJECT_PANIC=<place>:<job>` panics at `place` (`run`,
//! `scheduler`, or one of the job driver's stages: `source`, `feed`, `plan`, `execute`) for
//! that one job. Nothing reads it unless both parts match exactly.

use std::any::Any;

/// The environment variable behind [`injected_panic`]; its name says it is not for production.
#[doc(hidden)]
pub const INJECT_PANIC_VAR: &str = "YAMPI_SYNC_TESTING_ONLY_INJECT_PANIC";

/// The text a panic was raised with, for the run's message and the log.
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Panics when the hidden test switch names this place and job.
#[doc(hidden)]
pub fn injected_panic(place: &str, job: &str) {
    if let Some(v) = std::env::var_os(INJECT_PANIC_VAR)
        && v.to_str() == Some(&format!("{place}:{job}"))
    {
        panic!("injected panic at {place} for job {job} ({INJECT_PANIC_VAR} is set)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_of_str_and_string_panics() {
        let a = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(message(a.as_ref()), "plain");
        let n = 3;
        let b = std::panic::catch_unwind(|| panic!("with {n}")).unwrap_err();
        assert_eq!(message(b.as_ref()), "with 3");
    }
}
