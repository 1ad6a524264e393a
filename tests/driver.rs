//! Every kind of job (stock, price, audit, batch edit) runs on the one job driver
//! (`src/pipeline/driver.rs`): the driver's stage boundaries and its dry-run branch are seen
//! from each kind. The driver's test-only panic switch (`YAMPI_SYNC_TESTING_ONLY_INJECT_PANIC`
//! = `<stage>:<job>`) stops a run at a stage; a kind that ran its own orchestration would never
//! reach it.

mod support;

use std::process::{Command, Output};

use support::prices::*;
use support::*;

/// The hidden switch that makes the binary panic at a chosen place (see `panics::injected_panic`).
const PANIC_SWITCH: &str = "YAMPI_SYNC_TESTING_ONLY_INJECT_PANIC";

const EDIT: &str = r#"edit = { attribute = "price_sale", operation_type = "decrement", value_type = "percent", value = 20, restrictions = { include = { brands_ids = [1] } } }"#;

const KINDS: [&str; 4] = ["stock", "price", "audit", "batch_edit"];

/// An env whose one job `estoque` is of `kind`, with a feed that differs from the store (for the
/// kinds that read one).
async fn env_of(kind: &str) -> Env {
    let catalog = small_catalog();
    let mut env = match kind {
        "price" => {
            let env = price_env(&catalog, &price_mapping("comma", "price_sale = \"Preço\"")).await;
            // Every sale price one real up: a small move, still above any promotion.
            let sales: Vec<String> = catalog
                .products
                .iter()
                .flat_map(|p| &p.skus)
                .map(|s| (s.price_sale + rust_decimal::Decimal::ONE).to_string())
                .collect();
            env.write_feed(
                "estoque-1.csv",
                &price_feed(&catalog, |i| {
                    (sales[i].replace('.', ","), String::new(), String::new())
                }),
            );
            env
        }
        _ => {
            let env = Env::start(catalog.clone()).await;
            env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (977, 3)));
            env
        }
    };
    env.kind = kind.into();
    if kind == "batch_edit" {
        // Every minute: the occurrence due now is at most a minute old, well within max_lateness.
        env.schedule = "* * * * *".into();
        env.job_extra = EDIT.into();
    }
    if kind == "audit" {
        env.job_extra = "queue_timeout = \"20s\"\n".into();
    }
    env
}

/// `--run-once` (plus `args`), through the real binary, panicking at the driver's `stage` for
/// job `estoque` when `stage` is given.
fn run(env: &Env, stage: Option<&str>, args: &[&str]) -> Output {
    let mut c: Command = env.command(&["--run-once"]);
    c.args(args);
    if let Some(stage) = stage {
        c.env(PANIC_SWITCH, format!("{stage}:estoque"));
    }
    c.output().expect("binary runs")
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_stops_at_the_drivers_execute_stage_before_anything_is_written() {
    for kind in KINDS {
        let env = env_of(kind).await;
        let out = run(&env, Some("execute"), &[]);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(3), "{kind}: {text}");
        assert!(
            text.contains("injected panic at execute"),
            "{kind} reaches the driver's execute stage: {text}"
        );
        assert!(env.non_reads().is_empty(), "{kind}: {:?}", env.non_reads());
        if kind == "audit" {
            assert_eq!(
                env.sim.count("GET", "export"),
                0,
                "the audit reads the store's exports only in its execute stage"
            );
            continue;
        }
        // The stage before execute recorded nothing in doubt: the next run goes through.
        let out = run(&env, None, &[]);
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(4),
            "{kind}: {}",
            output_text(&out)
        );
        if kind == "batch_edit" {
            assert_eq!(
                env.sim.count("PUT", "/batch-edit"),
                1,
                "{}",
                output_text(&out)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drivers_dry_run_branch_stops_every_writing_kind_before_execute() {
    for kind in KINDS {
        let env = env_of(kind).await;
        let out = run(&env, Some("execute"), &["--dry-run"]);
        let text = output_text(&out);
        if kind == "audit" {
            // A kind that writes nothing runs whole in a dry run.
            assert_eq!(out.status.code(), Some(3), "{kind}: {text}");
            assert!(text.contains("injected panic at execute"), "{text}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{kind}: {text}");
            assert!(text.contains("dry run"), "{kind}: {text}");
        }
        assert!(env.non_reads().is_empty(), "{kind}: {:?}", env.non_reads());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_passes_the_drivers_feed_and_plan_stages() {
    for stage in ["source", "feed", "plan"] {
        for kind in KINDS {
            let env = env_of(kind).await;
            let out = run(&env, Some(stage), &[]);
            let text = output_text(&out);
            assert_eq!(out.status.code(), Some(3), "{kind} at {stage}: {text}");
            assert!(
                text.contains(&format!("injected panic at {stage}")),
                "{kind} at {stage}: {text}"
            );
            assert!(env.non_reads().is_empty(), "{kind}: {:?}", env.non_reads());
        }
    }
}
