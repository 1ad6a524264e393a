//! What running a command needs beyond its arguments: the loaded settings, the state store and
//! the API clients, each opened with its problems printed and turned into an exit code. Shared by
//! the one-shot commands (`app`) and the daemon.

use std::path::Path;

use crate::config::{self, Settings};
use crate::pipeline;
use crate::report::EXIT_FAILED;
use crate::state::StateStore;

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
