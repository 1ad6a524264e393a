//! Rate limiting: the documented per-route quotas, counted in fixed windows per route group.
//!
//! A group's window opens at the first request that arrives while no window is open and lasts
//! exactly `window`; the next request after it closes opens a new one (Laravel's throttle works
//! this way: the counter expires `window` after its first hit).

use std::time::{Duration, Instant};

/// Requests allowed per window for each route group (documented defaults: 30 / 30 / 60 per minute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimLimits {
    /// `GET /{alias}/catalog/skus*`
    pub get_skus: u32,
    /// `GET /{alias}/catalog/products*`
    pub get_products: u32,
    /// Every other request, any method.
    pub default: u32,
}

impl Default for SimLimits {
    fn default() -> Self {
        SimLimits {
            get_skus: 30,
            get_products: 30,
            default: 60,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Group {
    GetSkus,
    GetProducts,
    Default,
}

impl Group {
    /// `segs` are the non-empty path segments, e.g. `["v2", "demo", "catalog", "skus"]`.
    pub(super) fn of(method: &str, segs: &[&str]) -> Group {
        if method != "GET" || segs.len() < 4 || segs[0] != "v2" || segs[2] != "catalog" {
            return Group::Default;
        }
        match segs[3] {
            "skus" => Group::GetSkus,
            "products" => Group::GetProducts,
            _ => Group::Default,
        }
    }

    fn index(self) -> usize {
        match self {
            Group::GetSkus => 0,
            Group::GetProducts => 1,
            Group::Default => 2,
        }
    }
}

pub(super) enum Verdict {
    Allowed { limit: u32, remaining: u32 },
    Limited { limit: u32 },
}

#[derive(Debug)]
pub(super) struct RateLimiter {
    limits: SimLimits,
    window: Duration,
    /// Per group: when the open window started and how many requests it has counted.
    open: [Option<(Instant, u32)>; 3],
}

impl RateLimiter {
    pub(super) fn new(limits: SimLimits, window: Duration) -> Self {
        RateLimiter {
            limits,
            window,
            open: [None; 3],
        }
    }

    /// Replaces the quotas and starts every group afresh.
    pub(super) fn reset(&mut self, limits: SimLimits, window: Duration) {
        *self = RateLimiter::new(limits, window);
    }

    pub(super) fn limit(&self, group: Group) -> u32 {
        match group {
            Group::GetSkus => self.limits.get_skus,
            Group::GetProducts => self.limits.get_products,
            Group::Default => self.limits.default,
        }
    }

    /// Counts one request; a request over quota is not counted (it gets 429 and does nothing).
    pub(super) fn hit(&mut self, group: Group, now: Instant) -> Verdict {
        let limit = self.limit(group);
        let window = self.window;
        let slot = &mut self.open[group.index()];
        if slot.is_some_and(|(start, _)| now.saturating_duration_since(start) >= window) {
            *slot = None;
        }
        let (_, count) = slot.get_or_insert((now, 0));
        if *count >= limit {
            Verdict::Limited { limit }
        } else {
            *count += 1;
            Verdict::Allowed {
                limit,
                remaining: limit - *count,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        let g = |m, p: &str| {
            Group::of(
                m,
                &p.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(g("GET", "/v2/demo/catalog/skus"), Group::GetSkus);
        assert_eq!(g("GET", "/v2/demo/catalog/skus/1/stocks"), Group::GetSkus);
        assert_eq!(
            g("GET", "/v2/demo/catalog/products/1/stocks"),
            Group::GetProducts
        );
        assert_eq!(
            g("POST", "/v2/demo/catalog/products/1/stocks/sync"),
            Group::Default
        );
        assert_eq!(g("GET", "/v2/demo/logistics/stocks"), Group::Default);
        assert_eq!(g("GET", "/v2/ping"), Group::Default);
        // Queues, their logs and notifications count in the general group.
        assert_eq!(g("GET", "/v2/demo/queues/7"), Group::Default);
        assert_eq!(g("GET", "/v2/demo/queues/7/logs"), Group::Default);
        assert_eq!(g("GET", "/v2/demo/notifications"), Group::Default);
        assert_eq!(g("POST", "/v2/demo/catalog/skus/import"), Group::Default);
    }

    #[test]
    fn fixed_window_from_first_hit() {
        let limits = SimLimits {
            get_skus: 2,
            get_products: 2,
            default: 2,
        };
        let mut rl = RateLimiter::new(limits, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(matches!(
            rl.hit(Group::GetSkus, t0),
            Verdict::Allowed { remaining: 1, .. }
        ));
        assert!(matches!(
            rl.hit(Group::GetSkus, t0 + Duration::from_secs(9)),
            Verdict::Allowed { remaining: 0, .. }
        ));
        assert!(matches!(
            rl.hit(Group::GetSkus, t0 + Duration::from_secs(9)),
            Verdict::Limited { limit: 2 }
        ));
        // Other groups are independent.
        assert!(matches!(
            rl.hit(Group::Default, t0 + Duration::from_secs(9)),
            Verdict::Allowed { remaining: 1, .. }
        ));
        assert!(matches!(
            rl.hit(Group::GetSkus, t0 + Duration::from_secs(10)),
            Verdict::Allowed { remaining: 1, .. }
        ));
    }
}
