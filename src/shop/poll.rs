//! Pacing of status polls (the progress of an asynchronous batch update, and later the queues of
//! imports and exports).
//!
//! Polls count against the general route group, the same budget the writes spend, and several
//! products may be followed at once. Yampi asks integrators not to poll on short fixed intervals,
//! so the polls of one store together take at most a quarter of that group's limit, however many
//! are waiting: a governor rate limiter (GCRA, burst of one) spaces them evenly.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::Limits;

/// Share of the general group's budget that polls may take: one in `POLL_SHARE` requests.
const POLL_SHARE: u32 = 4;

pub struct PollPacer {
    limiter: DefaultDirectRateLimiter,
    period: Duration,
}

impl PollPacer {
    pub fn new(limits: Limits) -> Self {
        let per_window = (limits.default / POLL_SHARE).max(1);
        let period = (limits.window / per_window).max(Duration::from_millis(1));
        let quota = Quota::with_period(period)
            .expect("a period of at least 1 ms")
            .allow_burst(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct(quota),
            period,
        }
    }

    /// The smallest time between two polls of this store.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits until this store may send its next poll.
    pub async fn ready(&self) {
        self.limiter.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_take_a_quarter_of_the_general_budget() {
        let p = PollPacer::new(Limits {
            default: 60,
            get_skus: 30,
            get_products: 30,
            window: Duration::from_secs(60),
        });
        assert_eq!(p.period(), Duration::from_secs(4));
        let tiny = PollPacer::new(Limits {
            default: 2,
            get_skus: 1,
            get_products: 1,
            window: Duration::from_millis(3),
        });
        assert_eq!(tiny.period(), Duration::from_millis(3));
    }

    #[test]
    fn a_second_poll_within_the_period_waits() {
        let p = PollPacer::new(Limits::default());
        assert!(p.limiter.check().is_ok(), "the first poll goes at once");
        assert!(p.limiter.check().is_err(), "the next one waits its 4 s");
    }
}
