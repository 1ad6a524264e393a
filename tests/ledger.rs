//! The operation ledger end to end: a write whose answer is lost stays in the ledger as
//! unknown and is read back, never counted as applied; a state dir written before the ledger
//! keeps its writes in flight.

mod support;

use support::*;
use yampi_sync::sim::Faults;
use yampi_sync::state::{OpKind, StateStore, stock_key};

fn before(_p: u64, _s: u64) -> (i64, i64) {
    (5, 6)
}

/// Every SKU as before except those of the first product.
fn after(first: u64) -> impl Fn(u64, u64) -> (i64, i64) {
    move |p, s| if p == first { (9, 8) } else { before(p, s) }
}

/// Synced at `before`, then a run whose one `stocks/sync` (the first product's) is applied but
/// its answer lost.
async fn a_write_with_its_answer_lost() -> (Env, yampi_sync::sim::Catalog, u64) {
    let catalog = yampi_sync::sim::sample_catalog(3, 2, 5);
    let mut env = Env::start(catalog.clone()).await;
    // The lost answer comes back at once instead of after every retry.
    env.max_retries = 0;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, before));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let first = catalog.products[0].id;
    env.write_feed("estoque-2.csv", &feed_for(&catalog, after(first)));
    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    let (code, report) = env.run_default().await;
    assert_ne!(code, 0, "{}", report.summary_line());
    assert_eq!(
        report.products_written, 0,
        "an unanswered write is never counted"
    );
    env.sim.set_faults(Faults::default());
    assert!(
        env.applied_syncs(first) >= 2,
        "the write did land in the store"
    );
    (env, catalog, first)
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_kept_unknown_and_read_back_not_resent() {
    let (env, catalog, first) = a_write_with_its_answer_lost().await;
    {
        let state = StateStore::open(&env.state_dir()).unwrap();
        let pending = state.ledger("estoque").unwrap().pending().unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].kind, OpKind::StockSync);
        assert_eq!(pending[0].key, stock_key(first));
        assert!(
            pending[0].unknown.is_some(),
            "recorded as unknown, with why"
        );
    }
    let syncs = env.applied_syncs(first);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(report.already_applied, 1, "{}", report.summary_line());
    assert_eq!(env.applied_syncs(first), syncs, "sent again");
    assert_stock(&env, &catalog, after(first));
    let state = StateStore::open(&env.state_dir()).unwrap();
    assert!(
        state
            .ledger("estoque")
            .unwrap()
            .pending()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_state_dir_written_before_the_ledger_keeps_its_interrupted_write() {
    let (env, catalog, first) = a_write_with_its_answer_lost().await;
    // Turn the state dir into what the previous version left: the intent under its old key
    // (`i` + product id in `job/<name>`), no ledger.
    {
        let state = StateStore::open(&env.state_dir()).unwrap();
        let op = state
            .ledger("estoque")
            .unwrap()
            .pending()
            .unwrap()
            .remove(0);
        drop(state);
        let db = sled::open(env.state_dir().join("db")).unwrap();
        db.drop_tree("ledger/estoque").unwrap();
        let mut key = vec![b'i'];
        key.extend_from_slice(&first.to_be_bytes());
        let job = db.open_tree("job/estoque").unwrap();
        job.insert(key, serde_json::to_vec(&op.intent).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let syncs = env.applied_syncs(first);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(report.already_applied, 1, "{}", report.summary_line());
    assert_eq!(env.applied_syncs(first), syncs, "sent again");
    assert_stock(&env, &catalog, after(first));
    let state = StateStore::open(&env.state_dir()).unwrap();
    assert!(
        state
            .ledger("estoque")
            .unwrap()
            .pending()
            .unwrap()
            .is_empty()
    );
    assert!(state.stock_pending("estoque").unwrap().is_empty());
}
