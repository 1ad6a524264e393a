//! Per-store, per-route-group throttling so yampi-sync never causes a 429 storm.
//!
//! Yampi counts requests per route group in fixed windows whose boundaries the client cannot see,
//! and tells it, on every response, how many it has left (`X-RateLimit-Remaining`). Two rules
//! decide when a group may send, both checked and applied under one lock with no await in
//! between (so a cancelled `acquire` never holds anything):
//!
//! - A sliding-window log of send times: no interval of length `window` ever contains more than
//!   `limit` sends. Whatever the server's window boundaries are, none of its windows can then see
//!   more than the limit, with or without rate-limit headers.
//! - The announced budget: a group sends while the last known remaining quota, minus the requests
//!   still in flight, is above zero; at zero it holds until the window it saw start is over (plus
//!   a small margin), then sends a single probe whose answer tells the new budget. With no answer
//!   yet (first request, after a reset, after a 429) only one request is in flight.
//!
//! A lower `X-RateLimit-Limit` than configured lowers the log's limit to it. A 429 holds the group
//! for a whole window.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteGroup {
    /// `GET /catalog/skus*` (30/min documented)
    GetSkus,
    /// `GET /catalog/products*` (30/min documented)
    GetProducts,
    /// everything else (60/min documented)
    Default,
}

impl RouteGroup {
    pub fn of(method: &reqwest::Method, path: &str) -> RouteGroup {
        let p = path.trim_start_matches('/');
        if method == reqwest::Method::GET {
            if p.starts_with("catalog/skus") {
                return RouteGroup::GetSkus;
            }
            if p.starts_with("catalog/products") {
                return RouteGroup::GetProducts;
            }
        }
        RouteGroup::Default
    }

    fn index(self) -> usize {
        match self {
            RouteGroup::GetSkus => 0,
            RouteGroup::GetProducts => 1,
            RouteGroup::Default => 2,
        }
    }
}

struct WindowState {
    limit: u32,
    /// Remaining quota announced by the latest answer; `None` = unknown (probe first).
    remaining: Option<u32>,
    /// Requests sent whose answer has not arrived.
    in_flight: u32,
    /// No request of this group leaves before this instant.
    hold_until: Option<Instant>,
    /// When the answer to the first request of the server's current window arrived. The
    /// server opened that window when the request reached it, which is no later than this, so
    /// `window_start + window` is never before the window's real end.
    window_start: Option<Instant>,
    /// Send times within the last `window`, oldest first (at most `limit` of them).
    sent: VecDeque<Instant>,
}

/// Why a group cannot send right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until this instant (a hold, or the oldest send leaving the sliding window).
    Until(Instant),
    /// Until an answer in flight tells the budget.
    Answer,
}

pub struct GroupLimiter {
    window: Duration,
    state: Mutex<WindowState>,
    changed: Notify,
    pub rate_limited: AtomicU64,
}

/// What the answer to one request said about the quota.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuotaAnswer {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    pub rate_limited: bool,
}

/// The right to send one request; give the answer back with `complete`.
pub struct GroupPermit<'a> {
    group: &'a GroupLimiter,
    done: bool,
}

impl GroupPermit<'_> {
    pub fn complete(mut self, answer: QuotaAnswer) {
        self.done = true;
        self.group.complete(answer);
    }
}

impl Drop for GroupPermit<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Cancelled or failed without an answer: the request may have counted.
            self.group.complete(QuotaAnswer::default());
        }
    }
}

impl GroupLimiter {
    fn new(limit: u32, window: Duration) -> Self {
        let limit = limit.max(1);
        Self {
            window: window.max(Duration::from_millis(1)),
            state: Mutex::new(WindowState {
                limit,
                remaining: None,
                in_flight: 0,
                hold_until: None,
                window_start: None,
                sent: VecDeque::with_capacity(limit.min(1024) as usize),
            }),
            changed: Notify::new(),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// Safety margin added to estimated window ends, for latency differences between requests.
    fn margin(&self) -> Duration {
        (self.window / 50).max(Duration::from_millis(5))
    }

    /// Whether a request may leave now, and if not, what to wait for.
    fn check(&self, st: &mut WindowState, now: Instant) -> Option<Wait> {
        while st.sent.front().is_some_and(|t| *t + self.window <= now) {
            st.sent.pop_front();
        }
        if let Some(h) = st.hold_until
            && h > now
        {
            return Some(Wait::Until(h));
        }
        if st.sent.len() >= st.limit as usize {
            let oldest = st.sent[st.sent.len() - st.limit as usize];
            return Some(Wait::Until(oldest + self.window));
        }
        let available = match st.remaining {
            None => u32::from(st.in_flight == 0),
            Some(r) => r.saturating_sub(st.in_flight),
        };
        (available == 0).then_some(Wait::Answer)
    }

    /// Takes the right to send one request now, if both rules allow it. Never waits, so it
    /// cannot be cancelled half-way: the send is logged and counted in flight together with
    /// the permit that gives them back.
    pub fn try_acquire(&self) -> Option<GroupPermit<'_>> {
        let mut st = self.state.lock().expect("limiter state");
        let now = Instant::now();
        if self.check(&mut st, now).is_some() {
            return None;
        }
        st.sent.push_back(now);
        st.in_flight += 1;
        Some(GroupPermit {
            group: self,
            done: false,
        })
    }

    /// Waits until this group may send one request.
    pub async fn acquire(&self) -> GroupPermit<'_> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(p) = self.try_acquire() {
                return p;
            }
            let wait = {
                let mut st = self.state.lock().expect("limiter state");
                self.check(&mut st, Instant::now())
            };
            self.wait(wait, notified).await;
        }
    }

    /// Waits until a `try_acquire` would succeed (another request may still take the chance
    /// first; callers try and come back).
    pub async fn ready(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut st = self.state.lock().expect("limiter state");
                self.check(&mut st, Instant::now())
            };
            if wait.is_none() {
                return;
            }
            self.wait(wait, notified).await;
        }
    }

    async fn wait(
        &self,
        wait: Option<Wait>,
        notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) {
        match wait {
            None => {}
            Some(Wait::Until(h)) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(h) => {}
                    _ = notified => {}
                }
            }
            // Waiting for an answer to arrive. If a whole window passes with nothing in
            // flight and no answer, the budget we believed in is stale: probe again.
            Some(Wait::Answer) => {
                let timed_out = tokio::time::timeout(self.window, notified).await.is_err();
                let mut st = self.state.lock().expect("limiter state");
                if timed_out && st.in_flight == 0 {
                    st.remaining = None;
                }
            }
        }
    }

    fn complete(&self, answer: QuotaAnswer) {
        let mut st = self.state.lock().expect("limiter state");
        st.in_flight = st.in_flight.saturating_sub(1);
        let now = Instant::now();
        if let Some(l) = answer.limit
            && l > 0
            && l < st.limit
        {
            tracing::warn!(
                configured = st.limit,
                announced = l,
                "The API announces a lower rate limit than configured; slowing down to it"
            );
            st.limit = l;
        }
        let window_end = |st: &WindowState| match st.window_start {
            Some(ws) if ws + self.window > now => ws + self.window,
            _ => now + self.window,
        };
        if answer.rate_limited {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            let until = window_end(&st) + self.margin();
            st.hold_until = Some(st.hold_until.map_or(until, |h| h.max(until)));
            st.remaining = None;
            st.window_start = None;
        } else if let Some(rem) = answer.remaining {
            let lim = answer.limit.unwrap_or(st.limit);
            if rem + 1 >= lim {
                // The first request of a fresh server window.
                st.window_start = Some(now);
            }
            if rem == 0 {
                let until = window_end(&st) + self.margin();
                st.hold_until = Some(st.hold_until.map_or(until, |h| h.max(until)));
                // After the hold, probe with one request to learn the new window's budget.
                st.remaining = None;
            } else if st.hold_until.is_none_or(|h| h <= now) {
                // Answers can arrive out of order: within one window the lowest count is current.
                st.remaining = Some(match st.remaining {
                    Some(prev) if rem + 1 < lim => prev.min(rem),
                    _ => rem,
                });
            }
        } else {
            // No headers (transport failure): assume the request counted; when that would
            // spend the last of the budget, probe instead of waiting for an answer that will
            // never come.
            st.remaining = match st.remaining {
                Some(r) if r > 1 => Some(r - 1),
                _ => None,
            };
        }
        drop(st);
        self.changed.notify_waiters();
    }

    #[cfg(test)]
    fn in_flight(&self) -> u32 {
        self.state.lock().expect("limiter state").in_flight
    }
}

/// The three group limiters of one store.
pub struct StoreLimiter {
    groups: [GroupLimiter; 3],
    pub limits: Limits,
}

impl StoreLimiter {
    pub fn new(limits: Limits) -> Self {
        Self {
            groups: [
                GroupLimiter::new(limits.get_skus, limits.window),
                GroupLimiter::new(limits.get_products, limits.window),
                GroupLimiter::new(limits.default, limits.window),
            ],
            limits,
        }
    }

    pub fn group(&self, g: RouteGroup) -> &GroupLimiter {
        &self.groups[g.index()]
    }

    pub fn rate_limited_total(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.rate_limited.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    #[test]
    fn groups_follow_the_documented_table() {
        assert_eq!(
            RouteGroup::of(&Method::GET, "catalog/skus"),
            RouteGroup::GetSkus
        );
        assert_eq!(
            RouteGroup::of(&Method::GET, "/catalog/skus/1/stocks"),
            RouteGroup::GetSkus
        );
        assert_eq!(
            RouteGroup::of(&Method::GET, "catalog/products/5/stocks"),
            RouteGroup::GetProducts
        );
        assert_eq!(
            RouteGroup::of(&Method::POST, "catalog/products/5/stocks/sync"),
            RouteGroup::Default
        );
        assert_eq!(
            RouteGroup::of(&Method::GET, "logistics/stocks"),
            RouteGroup::Default
        );
    }

    fn answer(limit: u32, remaining: u32) -> QuotaAnswer {
        QuotaAnswer {
            limit: Some(limit),
            remaining: Some(remaining),
            rate_limited: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn spends_the_announced_budget_then_holds_for_the_window() {
        let g = GroupLimiter::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        // Unknown budget: one probe at a time.
        let p = g.acquire().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(10), g.acquire())
                .await
                .is_err(),
            "a second request must wait for the probe's answer"
        );
        p.complete(answer(10, 2));
        // Two left: both go at once.
        let a = g.acquire().await;
        let b = g.acquire().await;
        assert!(t0.elapsed() < Duration::from_secs(1));
        a.complete(answer(10, 1));
        b.complete(answer(10, 0));
        // Quota spent: the next one waits for the window (60 s from the probe) to end.
        let c = g.acquire().await;
        assert!(
            t0.elapsed() >= Duration::from_secs(60),
            "{:?}",
            t0.elapsed()
        );
        c.complete(answer(10, 9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_request_never_leaves_the_group_waiting_forever() {
        let g = GroupLimiter::new(10, Duration::from_secs(60));
        g.acquire().await.complete(answer(10, 1));
        // The last request of the budget fails without an answer (dropped connection).
        drop(g.acquire().await);
        // The next one probes instead of waiting for an answer that will never come.
        let t0 = Instant::now();
        let p = tokio::time::timeout(Duration::from_secs(1), g.acquire()).await;
        assert!(p.is_ok(), "stuck after a failed request");
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    /// Send times of `n` requests through `g`, each answered at once with `answer`.
    async fn send_times(g: &GroupLimiter, n: usize, answer: QuotaAnswer) -> Vec<Instant> {
        let mut times = Vec::new();
        for _ in 0..n {
            let p = g.acquire().await;
            times.push(Instant::now());
            p.complete(answer);
        }
        times
    }

    fn assert_no_window_over(times: &[Instant], limit: usize, window: Duration) {
        for (i, w) in times.windows(limit + 1).enumerate() {
            assert!(
                w[limit] - w[0] >= window,
                "requests {i}..={} were sent within {:?} (limit {limit} per {window:?})",
                i + limit,
                w[limit] - w[0]
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn without_headers_no_interval_of_a_window_sees_more_than_the_limit() {
        let window = Duration::from_secs(10);
        let g = GroupLimiter::new(3, window);
        let times = send_times(&g, 8, QuotaAnswer::default()).await;
        assert_no_window_over(&times, 3, window);
    }

    #[tokio::test(start_paused = true)]
    async fn a_generous_announced_budget_never_exceeds_the_configured_limit() {
        let window = Duration::from_secs(10);
        let g = GroupLimiter::new(3, window);
        let times = send_times(&g, 8, answer(100, 90)).await;
        assert_no_window_over(&times, 3, window);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_announced_limit_lowers_the_log() {
        let window = Duration::from_secs(10);
        let g = GroupLimiter::new(5, window);
        let times = send_times(&g, 7, answer(2, 1)).await;
        // The first answer announces 2: from then on no window holds more than 2.
        assert_no_window_over(&times[1..], 2, window);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_acquire_leaks_no_slot() {
        let g = GroupLimiter::new(2, Duration::from_secs(60));
        g.acquire().await.complete(answer(100, 50));
        g.acquire().await.complete(answer(100, 49));
        // The window is full: this acquire waits, and is cancelled while waiting.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), g.acquire())
                .await
                .is_err()
        );
        assert_eq!(g.in_flight(), 0, "the cancelled acquire left a slot taken");
        // After a 429 the budget is unknown: a probe needs nothing in flight. A leaked slot
        // would make the group wait forever.
        tokio::time::sleep(Duration::from_secs(120)).await;
        g.acquire().await.complete(QuotaAnswer {
            rate_limited: true,
            ..QuotaAnswer::default()
        });
        let p = tokio::time::timeout(Duration::from_secs(600), g.acquire()).await;
        assert!(p.is_ok(), "the group is stuck after a cancelled acquire");
    }

    #[tokio::test(start_paused = true)]
    async fn ready_then_try_acquire_takes_the_slot() {
        let g = GroupLimiter::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        g.try_acquire().expect("free").complete(answer(1, 0));
        assert!(g.try_acquire().is_none());
        g.ready().await;
        assert!(t0.elapsed() >= Duration::from_secs(10));
        assert!(g.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_the_group_for_a_window() {
        let g = GroupLimiter::new(5, Duration::from_secs(60));
        let t0 = Instant::now();
        g.acquire().await.complete(QuotaAnswer {
            rate_limited: true,
            ..QuotaAnswer::default()
        });
        let _p = g.acquire().await;
        assert!(t0.elapsed() >= Duration::from_secs(60));
        assert_eq!(g.rate_limited.load(Ordering::Relaxed), 1);
    }
}
