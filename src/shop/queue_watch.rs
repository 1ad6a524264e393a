//! Watching a queue until it finishes, and fetching a finished export's file.
//!
//! `watch` polls `GET /queues/{id}` through the store's poll pacer (polls share the general
//! route group with the writes) and at most every `poll_every`, until the queue is finished
//! (`finished_at` set, or everything sent processed); a queue still running when `timeout` has
//! passed is `WatchError::Timeout`, naming the queue, since when and how far it got. Transient
//! failures are retried until then; a final answer (404, 401) stops at once.
//! `export_file` takes the link from `redirect_url`, else from the notification that names the
//! queue (polled a few times: notifications can lag), and downloads it.

use std::time::Duration;

use super::queues::QueueState;
use super::{ApiError, ShopClient};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "queue {queue_id} has not finished {} after it started being watched at {since} ({processed} of {sent} lines processed); it is left running, look at it in Yampi before starting it again",
        crate::config::duration::format_duration(*waited)
    )]
    Timeout {
        queue_id: u64,
        /// UTC, RFC 3339.
        since: String,
        waited: Duration,
        sent: u64,
        processed: u64,
    },
    #[error("queue {queue_id}: {source}")]
    Api {
        queue_id: u64,
        #[source]
        source: ApiError,
    },
    #[error(
        "export queue {queue_id} finished but neither its redirect_url nor a notification links its file"
    )]
    NoFileLink { queue_id: u64 },
}

/// Polls queue `queue_id` until it finishes; `progress` sees every state read.
pub async fn watch(
    client: &ShopClient,
    queue_id: u64,
    timeout: Duration,
    poll_every: Duration,
    mut progress: Option<&mut (dyn FnMut(&QueueState) + Send)>,
) -> Result<QueueState, WatchError> {
    let started = tokio::time::Instant::now();
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut last: Option<QueueState> = None;
    loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        let timed_out = |last: &Option<QueueState>| WatchError::Timeout {
            queue_id,
            since: since.clone(),
            waited: started.elapsed(),
            sent: last.as_ref().map_or(0, |q| q.total_sent),
            processed: last.as_ref().map_or(0, |q| q.total_processed),
        };
        if remaining.is_zero() {
            return Err(timed_out(&last));
        }
        let next_poll = tokio::time::Instant::now() + poll_every;
        match tokio::time::timeout(remaining, client.queue(queue_id)).await {
            Err(_) => return Err(timed_out(&last)),
            Ok(Ok(state)) => {
                if let Some(p) = progress.as_deref_mut() {
                    p(&state);
                }
                if state.finished() {
                    return Ok(state);
                }
                last = Some(state);
            }
            // A final answer (the queue is gone, credentials refused) will not change.
            Ok(Err(e @ (ApiError::Status { .. } | ApiError::Decode { .. }))) => {
                return Err(WatchError::Api {
                    queue_id,
                    source: e,
                });
            }
            Ok(Err(e)) => {
                tracing::warn!(queue_id, error = %e, "Reading the queue failed; trying again");
            }
        }
        let wake = next_poll.min(started + timeout);
        tokio::time::sleep_until(wake).await;
    }
}

/// How often, and how far apart, the notifications are read when `redirect_url` is missing.
pub const NOTIFICATION_TRIES: u32 = 5;

/// The file of a finished export queue: from its `redirect_url`, else from the notification
/// whose `data.queue_id` is the queue's (read up to `NOTIFICATION_TRIES` times, `retry_every`
/// apart), else `NoFileLink`.
pub async fn export_file(
    client: &ShopClient,
    queue: &QueueState,
    retry_every: Duration,
) -> Result<Vec<u8>, WatchError> {
    let queue_id = queue.id;
    let api = |source| WatchError::Api { queue_id, source };
    let mut link = queue.redirect_url.clone();
    let mut tries = 0;
    while link.is_none() && tries < NOTIFICATION_TRIES {
        if tries > 0 {
            tokio::time::sleep(retry_every).await;
        }
        tries += 1;
        link = client.notification_link(queue_id).await.map_err(api)?;
    }
    let link = link.ok_or(WatchError::NoFileLink { queue_id })?;
    client.download(&link).await.map_err(api)
}
