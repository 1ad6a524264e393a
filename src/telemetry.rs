//! Log output through `tracing`: journald-friendly text or JSON lines, on stderr.
//!
//! Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org): redirected
//! logs and the journal get plain text. When a command prints the per-job summary lines on
//! stdout itself (`--run-once`, `demo`), the log leaves them out, so a terminal (or a journal
//! that captures both streams) shows each summary once.

use std::io::IsTerminal;

use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

use crate::cli::LogFormat;

/// `summaries_on_stdout`: the command prints the summary lines itself.
pub fn init(format: LogFormat, verbose: u8, quiet: u8, summaries_on_stdout: bool) {
    let level = match (verbose as i8) - (quiet as i8) {
        i8::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // Our own crate at the chosen level; dependencies stay at warn unless RUST_LOG says otherwise.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("warn,yampi_sync={level},yampi_sync_cli={level}"))
    });
    // The summary events are the ones with an `exit` field (the end of a job run), and the
    // reasons printed under them the ones with a `detail` field.
    let not_a_printed_summary = filter_fn(move |meta| {
        !(summaries_on_stdout
            && meta.is_event()
            && (meta.fields().field("exit").is_some() || meta.fields().field("detail").is_some()))
    });
    let colour = colour_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour);
    let _ = match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(layer.json().with_filter(not_a_printed_summary))
            .try_init(),
        LogFormat::Text => tracing_subscriber::registry()
            .with(filter)
            .with(layer.with_filter(not_a_printed_summary))
            .try_init(),
    };
}

/// Colour on a terminal unless `NO_COLOR` is set to anything but the empty string.
pub fn colour_wanted(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }
}
