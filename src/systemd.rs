//! systemd integration: READY, STATUS, WATCHDOG and STOPPING notifications (`Type=notify`).
//!
//! Every call does nothing outside systemd (no `NOTIFY_SOCKET`) and only logs when sending
//! fails: the service's work never depends on the notification channel.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "Cannot notify systemd");
    }
}

/// Config, state and health check are fine: the service is up.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A one-line status shown by `systemctl status`.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn reloading() {
    send(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading the config"),
    ]);
}

/// How often to ping the watchdog (half of `WatchdogSec`), when systemd asks for it.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}
