//! Fault injection: the configurable misbehaviours and the seeded draw that picks one per request.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

/// Misbehaviours the simulator can inject. Rates are fractions in `0.0..=1.0`.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Fraction of requests answered 500/502/503 with `{"message": ...}`; nothing is applied.
    pub error_rate: f64,
    /// Fraction of requests whose connection is closed without any response; nothing is applied.
    pub drop_rate: f64,
    /// Fraction of write requests (POST/PUT/PATCH/DELETE) that are applied and then dropped.
    pub apply_then_drop_rate: f64,
    /// Added before handling each request.
    pub latency: Duration,
    /// Pagination numbers as numeric strings and missing links as `""`, as the endpoint docs show.
    pub string_pagination: bool,
    /// Answer every request with the documented 429, regardless of quota.
    pub storm_429: bool,
    /// What `GET /v2/ping` answers instead of 200 `pong` (404, 401, 503, …); `None`: 200.
    pub ping_status: Option<u16>,
    /// Listing pages carry `"meta": null` (no pagination at all).
    pub meta_null: bool,
    /// Listings never end: `total_pages` says 10^9 and every page past the real ones has data
    /// (the real items again, with new ids). `total` stays honest unless `inflated_total`.
    pub endless_pages: bool,
    /// With `endless_pages`, `total` says 10^11 as well.
    pub inflated_total: bool,
    /// The last page's `links.next` points back to page 1, and a page past the end is served
    /// as the page it wraps to (`current_page` included).
    pub wrap_pages: bool,
    /// The SKU listing, unless ordered by id ascending, is newest first (`updated_at` desc),
    /// and before every page after the first an edit bumps the SKU at the end of that order to
    /// newest: it moves to the front and every page shifts by one.
    pub shift_pages: bool,
    /// Before page 2 of a SKU listing is served, the SKU with the lowest id is deleted, so every
    /// later SKU moves one place toward the front (in id order too).
    pub delete_between_pages: bool,
    /// The server's clock runs this far behind the real one: `updated_at` stamps of stock
    /// writes and admin edits, and the `Date` header.
    pub clock_behind: Duration,
    /// Response bodies never end (after the headers, bytes keep coming).
    pub endless_body: bool,
    /// Response bodies stop half-way and never finish (the connection stays open).
    pub stalled_body: bool,
    /// Every write is answered with this status and an error body that echoes the request's
    /// headers, credentials included (as some proxies and debug pages do).
    pub echo_headers: Option<u16>,
    /// Queues never finish: `finished_at` stays null and `total_processed` below `total_sent`.
    pub queue_never_finishes: bool,
    /// Import queues only never finish (exports still do).
    pub import_queue_never_finishes: bool,
    /// An import's `file_url` cannot be fetched: its queue finishes with one error entry and
    /// nothing applied.
    pub import_fetch_fails: bool,
    /// Import lines for these SKU ids fail with a Portuguese "locked" message.
    pub locked_sku_ids: Vec<u64>,
    /// Queues carry no `redirect_url`: an export's file is linked only by its notification.
    pub queue_links_only_in_notifications: bool,
    /// The import answer has no `queue_id` (the client must find the queue in `GET /queues`).
    pub import_without_queue_id: bool,
    /// Log entries' `line` is a JSON number instead of the documented string.
    pub log_line_as_number: bool,
    /// Log entries' `message` is a string instead of the documented array.
    pub log_message_as_string: bool,
    /// Seed of the RNG the faults are drawn from; reseeded whenever faults are set.
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    Error(u16),
    Drop,
    ApplyThenDrop,
}

/// One uniform draw per request, split into consecutive bands (drop, error, apply-then-drop),
/// so a given seed and request sequence always produce the same faults.
pub(super) fn draw(faults: &Faults, rng: &mut StdRng, is_write: bool) -> Fault {
    let rate = |r: f64| {
        if r.is_finite() {
            r.clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let u: f64 = rng.random();
    let drop = rate(faults.drop_rate);
    let error = drop + rate(faults.error_rate);
    let apply_then_drop = error + rate(faults.apply_then_drop_rate);
    if u < drop {
        Fault::Drop
    } else if u < error {
        Fault::Error([500, 502, 503][rng.random_range(0..3)])
    } else if is_write && u < apply_then_drop {
        Fault::ApplyThenDrop
    } else {
        Fault::None
    }
}

pub(super) fn error_message(status: u16) -> &'static str {
    match status {
        401 => "Unauthenticated.",
        403 => "This action is unauthorized.",
        404 => "Not Found",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_are_reproducible_and_respect_rates() {
        let faults = Faults {
            error_rate: 0.2,
            drop_rate: 0.1,
            apply_then_drop_rate: 0.3,
            seed: 9,
            ..Faults::default()
        };
        let run = || {
            let mut rng = StdRng::seed_from_u64(faults.seed);
            (0..2000)
                .map(|i| draw(&faults, &mut rng, i % 2 == 0))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let drops = a.iter().filter(|f| **f == Fault::Drop).count();
        let errors = a.iter().filter(|f| matches!(f, Fault::Error(_))).count();
        let atd: Vec<_> = a
            .iter()
            .enumerate()
            .filter(|(_, f)| **f == Fault::ApplyThenDrop)
            .collect();
        assert!((150..250).contains(&drops), "{drops}");
        assert!((320..480).contains(&errors), "{errors}");
        assert!(atd.iter().all(|(i, _)| i % 2 == 0), "only writes");
        assert!((220..380).contains(&atd.len()), "{}", atd.len());
        let none = Faults::default();
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..100).all(|_| draw(&none, &mut rng, true) == Fault::None));
    }
}
