//! The crash-safety proof: a stock run killed with SIGKILL at 20 moments spread over it (the
//! SKU index scan included), then run again, always leaves the store equal to the feed, and
//! each kill costs at most `max_in_flight + 2` writes beyond the ones the feed needs.
//!
//! `cargo test --test kill_proof -- --nocapture` prints the figures of every kill.

mod support;

use std::time::Duration;

use support::*;
use yampi_sync::sim::{Catalog, Faults, sample_catalog};

/// `max_in_flight` of the test config (the default).
const IN_FLIGHT: usize = 4;

fn qty(product: u64, sku: u64) -> (i64, i64) {
    (
        (sku % 19) as i64 + product as i64 % 4,
        (sku % 6) as i64 * 2 + 1,
    )
}

fn store_matches(env: &Env, catalog: &Catalog) -> Result<(), String> {
    for (p, s, code) in all_skus(catalog) {
        let (a, b) = qty(p, s);
        let got = (env.sim.stock(s, 1), env.sim.stock(s, 2));
        if got != (Some(a), Some(b)) {
            return Err(format!("{code}: store has {got:?}, feed says ({a}, {b})"));
        }
    }
    Ok(())
}

async fn env_with_feed(catalog: &Catalog) -> Env {
    let env = Env::start(catalog.clone()).await;
    // A little latency per request so a kill lands between requests, not only at the end.
    env.sim.set_faults(Faults {
        latency: Duration::from_millis(4),
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(catalog, qty));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_twenty_moments_the_rerun_converges_with_few_extra_writes() {
    // 100 products × 3 SKUs: three index pages, then 100 stocks/sync.
    let catalog = sample_catalog(100, 3, 23);
    let products = catalog.products.len();

    // An uninterrupted run: how many requests a whole run makes.
    let total = {
        let env = env_with_feed(&catalog).await;
        let out = env.run_binary(&["--run-once"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        store_matches(&env, &catalog).unwrap();
        assert_eq!(env.writes(), products);
        env.sim.requests().len()
    };
    assert!(total > products + 3, "{total}");

    // Moments spread over the run: each of the first four requests (the stocks list and the
    // three index pages), then sixteen spread over the writes.
    let writes_start = total - products;
    let moments: Vec<usize> = (1..=4)
        .chain((0..16).map(|i| writes_start + 1 + i * (products - 1) / 15))
        .collect();
    let mut figures = Vec::new();
    for (trial, k) in moments.iter().copied().enumerate() {
        let env = env_with_feed(&catalog).await;
        let mut child = Running(env.command(&["--run-once"]).spawn().expect("binary starts"));
        poll_until(
            &format!("trial {trial} to reach request {k}"),
            Duration::from_secs(60),
            Duration::from_micros(300),
            || env.sim.requests().len() >= k || child.try_wait().unwrap().is_some(),
        )
        .await;
        child.kill_hard();
        let seen_at_kill = env.sim.requests().len();
        let writes_killed = env.writes();

        let out = env.run_binary(&["--run-once"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "trial {trial}: rerun after a kill at request {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Err(e) = store_matches(&env, &catalog) {
            panic!("trial {trial} (kill at request {k}): {e}");
        }
        let writes = env.writes();
        let extra = writes.saturating_sub(products);
        figures.push((
            k,
            seen_at_kill,
            writes_killed,
            writes - writes_killed,
            extra,
        ));
        assert!(
            extra <= IN_FLIGHT + 2,
            "trial {trial}: kill at request {k}: {writes} writes for {products} products ({extra} extra)"
        );
    }
    eprintln!("kill at request | requests seen | writes before kill | writes by rerun | extra");
    for (k, seen, before, after, extra) in &figures {
        eprintln!("{k:>15} | {seen:>13} | {before:>18} | {after:>15} | {extra:>5}");
    }
    let worst = figures.iter().map(|f| f.4).max().unwrap_or(0);
    eprintln!(
        "{} kills over a {total}-request run; worst extra writes {worst} (bound {})",
        figures.len(),
        IN_FLIGHT + 2
    );
}
