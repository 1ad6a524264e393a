//! `explain JOB KEY` after real runs against the simulator: the file row and cells, each rule with
//! its values, the pushed value and when, the run's outcome; unmatched and rejected keys; `--json`.

mod support;

use serde_json::Value;
use support::prices::*;
use support::*;

fn explain(env: &Env, key: &str, json: bool) -> (i32, String) {
    let mut args = vec!["explain", "estoque", key];
    if json {
        args.push("--json");
    }
    let out = env.run_binary(&args);
    (out.status.code().unwrap_or(-1), output_text(&out))
}

fn explain_json(env: &Env, key: &str) -> Value {
    let out = env.run_binary(&["explain", "estoque", key, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    serde_json::from_slice(&out.stdout).expect("explain --json prints JSON")
}

#[tokio::test]
async fn a_stock_run_is_explained_row_cells_reserve_pushed_value_and_time() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.mapping = STOCK_MAPPING.replace("missing = \"keep\"", "missing = \"keep\"\nreserve = 2");
    let skus = all_skus(&catalog);
    let (_, sku_id, code) = skus[0].clone();
    // The second SKU gets a bad cell; the rest are fine.
    let feed = feed_for(&catalog, |_, s| if s == sku_id { (10, 1) } else { (5, 5) })
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{};", skus[1].2)) {
                let mut f: Vec<&str> = l.split(';').collect();
                f[2] = "dez";
                f.join(";")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    env.write_feed("estoque-1.csv", &feed);
    let (code_run, report) = env.run_default().await;
    assert_eq!(code_run, 4, "{}", report.summary_line());

    let requests = env.sim.requests().len();
    // Any case and spacing, as the run matches it.
    let (exit, text) = explain(&env, &format!("  {}  ", code.to_lowercase()), false);
    assert_eq!(exit, 0, "{text}");
    let row = 2; // the first data row
    assert!(
        text.contains(&format!("row {row}: Código = \"{code}\"")),
        "{text}"
    );
    assert!(
        text.contains("Saldo Loja = \"10\"") && text.contains("Saldo CD = \"1\""),
        "{text}"
    );
    assert!(text.contains("reserve: 10 − reserve 2 → 8"), "{text}");
    assert!(text.contains("reserve: 1 − reserve 2 → -1"), "{text}");
    assert!(text.contains("floor 0: -1 is below 0: 0 → 0"), "{text}");
    assert!(text.contains(&format!("SKU {sku_id} (product")), "{text}");
    // The pushed values with their time (local, the config's zone), and the run's outcome.
    assert!(
        text.contains("quantity (stock 1) = 8 (min 0) at 20"),
        "{text}"
    );
    assert!(
        text.contains("quantity (stock 2) = 0 (min 0) at 20"),
        "{text}"
    );
    assert!(!text.contains("unknown time"), "{text}");
    assert!(
        text.contains("Last run:") && text.contains("(exit 4)"),
        "{text}"
    );
    assert!(text.contains("outcome: applied"), "{text}");

    // The same facts in JSON.
    let v = explain_json(&env, &code);
    assert_eq!(v["index"]["status"], "one");
    assert_eq!(v["index"]["skus"][0]["sku_id"], sku_id);
    assert_eq!(v["source"]["used"]["row"], row);
    assert_eq!(v["source"]["used"]["cells"][1]["text"], "10");
    let steps = &v["rules"]["fields"][0]["steps"];
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["rule"] == "reserve" && s["value"] == "8"),
        "{steps}"
    );
    let pushed = v["pushed"].as_array().unwrap();
    assert!(
        pushed
            .iter()
            .any(|p| p["stock_id"] == 1 && p["quantity"] == 8 && p["at"].is_string()),
        "{pushed:?}"
    );
    assert_eq!(v["last_run"]["exit_code"], 4);
    assert!(
        v["report_rows"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["cells"]["outcome"] == "applied"),
        "{}",
        v["report_rows"]
    );
    assert_eq!(v["writes_in_doubt"].as_array().map(Vec::len), Some(0));

    // A key rejected for a bad cell: the row, the cell text and the reason.
    let (exit, text) = explain(&env, &skus[1].2, false);
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Saldo Loja = \"dez\""), "{text}");
    assert!(
        text.contains("rejected (column Saldo Loja, value \"dez\"): not a number"),
        "{text}"
    );
    let v = explain_json(&env, &skus[1].2);
    assert_eq!(v["source"]["verdict"][0]["outcome"], "rejected");
    assert!(v["source"]["used"].is_null());

    // A key the store does not have, and one the file does not have.
    let (exit, text) = explain(&env, "NAO-EXISTE", false);
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("no SKU of store loja in the index"), "{text}");
    assert!(text.contains("the key is not in"), "{text}");
    let v = explain_json(&env, "NAO-EXISTE");
    assert_eq!(v["index"]["status"], "not_found");
    assert!(v["source"]["rows"].as_array().unwrap().is_empty());

    assert_eq!(env.sim.requests().len(), requests, "explain sends nothing");

    // An unknown job is bad input.
    let out = env.run_binary(&["explain", "nope", &code]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(output_text(&out).contains("no job named \"nope\""));
}

#[tokio::test]
async fn a_key_in_the_file_that_no_store_sku_has_is_explained_as_unmatched() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let feed = feed_for(&catalog, |_, _| (3, 3)) + "FANTASMA-1;Nada;4;4\n";
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let (exit, text) = explain(&env, "fantasma-1", false);
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Código = \"FANTASMA-1\""), "{text}");
    assert!(
        text.contains("unmatched: no store SKU has this sku"),
        "{text}"
    );
    assert!(
        text.contains("Unmatched keys"),
        "the report row is shown: {text}"
    );
    let v = explain_json(&env, "FANTASMA-1");
    assert_eq!(v["source"]["verdict"][0]["outcome"], "unmatched");
    assert_eq!(v["index"]["status"], "not_found");
}

#[tokio::test]
async fn a_price_run_is_explained_markup_rounding_guards_and_the_pushed_price() {
    let catalog = small_catalog();
    let mapping = price_mapping(
        "comma",
        r#"
price_sale = "Preço"
price_discount = "Promoção"
price_cost = "Custo"
markup = 1.5
round_to = "0.90"
max_change_pct = 5000
"#,
    );
    let env = price_env(&catalog, &mapping).await;
    let skus = all_skus(&catalog);
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |i| match i {
            0 => ("212,34".into(), "0".into(), "1".into()),
            _ => ("20".into(), "0".into(), "1".into()),
        }),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let key = &skus[0].2;
    let (exit, text) = explain(&env, key, false);
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("Preço = \"212,34\""), "{text}");
    // 212.34 × 1.5 = 318.51 → 318.90
    assert!(text.contains("markup: 212.34 × 1.5 → 318.51"), "{text}");
    assert!(
        text.contains("round_to: up to the next price ending in 0.90 → 318.90"),
        "{text}"
    );
    assert!(text.contains("0 means no promotion"), "{text}");
    assert!(text.contains("cost floor"), "{text}");
    assert!(text.contains("price_sale = 318.90 at 20"), "{text}");
    assert!(text.contains("outcome: applied"), "{text}");
    // Pushed and unchanged: a second look says nothing is left to send.
    assert!(text.contains("nothing to send"), "{text}");

    let v = explain_json(&env, key);
    let steps = v["rules"]["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["rule"] == "markup" && s["value"] == "318.51"),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s["rule"] == "round_to" && s["value"] == "318.90"),
        "{steps:?}"
    );
    assert_eq!(v["rules"]["want"]["price_sale"], "318.90");
    let pushed = v["pushed"].as_array().unwrap();
    assert!(
        pushed
            .iter()
            .any(|p| p["field"] == "price_sale" && p["value"] == "318.90" && p["at"].is_string()),
        "{pushed:?}"
    );
    assert_eq!(v["last_run"]["exit_code"], 0);
}

#[tokio::test]
async fn a_key_two_store_skus_share_is_explained_as_shared_and_a_held_store_as_missing() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let skus = all_skus(&catalog);
    let shared = skus[0].2.clone();
    env.sim.update_sku(skus[1].1, |s| s.sku = shared.clone());
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (3, 3)));
    let (_, report) = env.run_default().await;
    assert!(
        report.exit_code == 0 || report.exit_code == 4,
        "{}",
        report.summary_line()
    );
    let (exit, text) = explain(&env, &shared, false);
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("2 store SKUs share this sku"), "{text}");
    assert!(
        text.contains(&format!("SKU {} (product", skus[0].1)),
        "{text}"
    );
    assert!(
        text.contains(&format!("SKU {} (product", skus[1].1)),
        "{text}"
    );
    let v = explain_json(&env, &shared);
    assert_eq!(v["index"]["status"], "shared");
    assert_eq!(v["index"]["skus"].as_array().map(Vec::len), Some(2));

    // Another process holds the state store: what can be read is shown, the rest is named.
    let held = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    let (exit, text) = explain(&env, &skus[2].2, false);
    assert_eq!(exit, 0, "{text}");
    assert!(
        text.contains("held by a running yampi-sync process"),
        "{text}"
    );
    assert!(
        !text.contains("unmatched:"),
        "no index is not no match: {text}"
    );
    assert!(
        text.contains("Last run:"),
        "from the status snapshot: {text}"
    );
    assert!(
        text.contains(&format!("Código = \"{}\"", skus[2].2)),
        "{text}"
    );
    drop(held);
}
