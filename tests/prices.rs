//! Price jobs and batch edits against the simulator: exact decimals, refusals, fewest requests,
//! and batch edits applied at most once per occurrence.

mod support;

use std::time::Duration;

use rust_decimal::Decimal;
use support::prices::*;
use support::*;
use yampi_sync::sim::{Catalog, Faults};

/// Markup 1.5, rounding to .90, a generous change cap.
fn mapping() -> String {
    let fields = r#"
price_sale = "Preço"
price_discount = "Promoção"
price_cost = "Custo"
markup = 1.5
round_to = "0.90"
max_change_pct = 5000
"#;
    price_mapping("comma", fields)
}

fn sku_prices(env: &Env, id: u64) -> (Decimal, Decimal, Decimal) {
    env.sim.sku_prices(id).expect("known SKU")
}

fn writes(env: &Env) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count()
}

#[tokio::test]
async fn markup_and_rounding_land_exact_decimals_and_blank_cells_are_left_alone() {
    let catalog = small_catalog();
    let env = price_env(&catalog, &mapping()).await;
    let skus = all_skus(&catalog);
    // The second SKU's promotion sits below its new sale price (a sale price below the store's
    // discount with a blank discount cell is refused).
    env.sim
        .update_sku(skus[1].1, |s| s.price_discount = s.price_cost);
    let before = sku_prices(&env, skus[1].1);
    // 10,00 × 1.5 = 15.00 → 15.90; 212,34 × 1.5 = 318.51 → 318.90 (above any sample cost, which
    // stays the floor when the cost cell is blank); discount 9 × 1.5 = 13.50 → 13.90; a zero
    // discount (no promotion) stays zero.
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |i| match i {
            0 => ("10,00".into(), "9".into(), "5,25".into()),
            1 => ("212,34".into(), String::new(), String::new()),
            _ => ("20".into(), "0".into(), "1".into()),
        }),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(
        sku_prices(&env, skus[0].1),
        (d("5.25"), d("15.90"), d("13.90"))
    );
    let (cost, sale, discount) = sku_prices(&env, skus[1].1);
    assert_eq!(sale, d("318.90"));
    assert_eq!(
        (cost, discount),
        (before.0, before.2),
        "blank cells leave the field alone"
    );
    assert_eq!(sku_prices(&env, skus[2].1), (d("1.00"), d("30.90"), d("0")));
    // The API received two-decimal numbers.
    let body = env
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.body.contains("15.90"))
        .expect("the first SKU's write");
    assert!(body.body.contains("\"price_cost\":5.25"), "{}", body.body);
}

#[tokio::test]
async fn refused_rows_are_untouched_and_the_rest_lands() {
    let catalog = small_catalog();
    let mut env = price_env(&catalog, &mapping()).await;
    env.mapping = mapping()
        .replace("max_change_pct = 5000", "max_change_pct = 50")
        .replace("markup = 1.5", "markup = 1")
        .replace("round_to = \"0.90\"", "");
    let skus = all_skus(&catalog);
    let original: Vec<_> = skus.iter().map(|s| sku_prices(&env, s.1)).collect();
    let current_sale = |i: usize| original[i].1;
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |i| match i {
            // Jumps far above the store's price.
            0 => (
                (current_sale(0) * d("3")).to_string(),
                String::new(),
                String::new(),
            ),
            // Below its cost.
            1 => (
                current_sale(1).to_string(),
                String::new(),
                (current_sale(1) + d("1")).to_string(),
            ),
            // Discount not below the sale price.
            2 => (
                current_sale(2).to_string(),
                current_sale(2).to_string(),
                String::new(),
            ),
            // Everything else moves 10 %.
            i => (
                (current_sale(i) * d("1.1")).round_dp(2).to_string(),
                String::new(),
                String::new(),
            ),
        })
        .replace('.', ","),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 4, "{}", report.summary_line());
    let reasons: Vec<String> = report
        .rejected
        .iter()
        .map(|r| r.reason.to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("max_change_pct")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("below the cost")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not below the sale price")),
        "{reasons:?}"
    );
    for (i, (_, id, _)) in skus.iter().enumerate() {
        if i < 3 {
            assert_eq!(
                sku_prices(&env, *id),
                original[i],
                "refused SKU {i} is untouched"
            );
        } else {
            let want = (current_sale(i) * d("1.1")).round_dp(2);
            assert_eq!(sku_prices(&env, *id).1, want, "SKU {i}");
        }
    }
}

#[tokio::test]
async fn shared_prices_go_in_one_request_per_product_and_reruns_send_nothing() {
    let catalog = small_catalog();
    let env = price_env(&catalog, &mapping()).await;
    let skus = all_skus(&catalog);
    // Product 0: all three SKUs get 300 → one batch update. Product 1: three different prices →
    // three SKU updates. Every other product: the same price for its SKUs → one batch each.
    // (Prices above every sample cost, which stays the floor with the cost cell blank.)
    let feed = price_feed(&catalog, |i| {
        let sale = match i {
            3 => "300".to_string(),
            4 => "301".to_string(),
            5 => "302".to_string(),
            i => format!("{}", 300 + i / 3),
        };
        (sale, "0".to_string(), String::new())
    });
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    // Product 1's three SKUs each get a batch update selecting only that SKU: a SKU update
    // would have to re-send fields the plan does not change.
    let batch = env.sim.count("PUT", "/batch-update-skus");
    let single = env.sim.count("PUT", "/catalog/skus/");
    assert_eq!((batch, single), (catalog.products.len() - 1 + 3, 0));
    assert_eq!(sku_prices(&env, skus[4].1).1, d("451.90"));
    for (_, id, _) in &skus[..3] {
        assert_eq!(sku_prices(&env, *id).1, d("450.90"));
    }
    // The same values in a new file: nothing to send.
    let before = writes(&env);
    env.write_feed("estoque-2.csv", &rows_reversed(&feed));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(writes(&env), before, "no write after an unchanged feed");
}

#[tokio::test]
async fn an_asynchronous_batch_update_is_followed_to_the_end() {
    let catalog = small_catalog();
    let mut env = price_env(&catalog, &mapping()).await;
    // Without a cost column (no floor to trip): every SKU gets the same price.
    env.mapping = mapping().replace("price_cost = \"Custo\"\n", "");
    env.sim.set_batch_async_threshold(1);
    env.sim.set_batch_async_delay(Duration::from_millis(300));
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |_| ("10".into(), "0".into(), String::new())),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(
        env.sim.count("GET", "batch-update-skus-progress") > 0,
        "progress was followed"
    );
    for (_, id, _) in all_skus(&catalog) {
        assert_eq!(sku_prices(&env, id).1, d("15.90"));
    }
}

fn batch_edit_env_extra() -> String {
    r#"edit = { attribute = "price_sale", operation_type = "decrement", value_type = "percent", value = 10, restrictions = { include = { brands_ids = [1] } } }"#.into()
}

async fn edit_env() -> (Env, Catalog) {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.kind = "batch_edit".into();
    env.job_extra = batch_edit_env_extra();
    (env, catalog)
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_edit_occurrence_is_applied_once() {
    let (env, catalog) = edit_env().await;
    let brand1: Vec<u64> = catalog
        .products
        .iter()
        .filter(|p| p.brand_id == Some(1))
        .flat_map(|p| p.skus.iter().map(|s| s.id))
        .collect();
    let before = sku_prices(&env, brand1[0]).1;
    assert_exit(&env.run_binary(&["--run-once"]), 0);
    assert_exit(&env.run_binary(&["--run-once"]), 0);
    assert_eq!(env.sim.batch_edits_applied(), 1);
    assert_eq!(
        env.sim.count("PUT", "/batch-edit"),
        1,
        "the second run sends nothing"
    );
    assert_eq!(
        sku_prices(&env, brand1[0]).1,
        (before * d("0.9")).round_dp(2)
    );
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_drop_leaves_the_occurrence_in_doubt_until_resolved() {
    let (env, _) = edit_env().await;
    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("in doubt"), "{text}");
    env.sim.set_faults(Faults::default());
    // Never retried automatically.
    let out = env.run_binary(&["--run-once"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(env.sim.batch_edits_applied(), 1);
    assert_eq!(env.sim.count("PUT", "/batch-edit"), 1);
    // `status` names it, and `resolve` settles it.
    let status = env.run_binary(&["status"]);
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("IN DOUBT"), "{status}");
    let occurrence = status
        .split("resolve estoque ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the occurrence is printed")
        .to_string();
    let out = env.run_binary(&["resolve", "estoque", &occurrence, "--applied"]);
    assert_exit(&out, 0);
    let out = env.run_binary(&["--run-once"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.sim.batch_edits_applied(),
        1,
        "settled as applied: never sent again"
    );
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_edit_is_not_applied_and_a_not_applied_verdict_resends_it() {
    let (env, _) = edit_env().await;
    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(env.run_binary(&["--run-once"]).status.code(), Some(3));
    env.sim.set_faults(Faults::default());
    let status = String::from_utf8_lossy(&env.run_binary(&["status", "--json"]).stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let occurrence = v[0]["edits_in_doubt"][0]["occurrence"]
        .as_str()
        .unwrap()
        .to_string();
    // The operator checked the store and found it not applied (pretend): the next run sends it.
    let out = env.run_binary(&["resolve", "estoque", &occurrence, "--not-applied"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(env.run_binary(&["--run-once"]).status.code(), Some(0));
    assert_eq!(env.sim.count("PUT", "/batch-edit"), 2);
    // Settling something not in doubt is refused.
    let out = env.run_binary(&["resolve", "estoque", &occurrence, "--applied"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_send_and_checkpoint_never_applies_twice() {
    let (env, _) = edit_env().await;
    env.sim.set_faults(Faults {
        latency: Duration::from_millis(800),
        ..Faults::default()
    });
    let mut child = Running(env.command(&["--run-once"]).spawn().unwrap());
    poll_until(
        "the edit to be sent",
        Duration::from_secs(20),
        Duration::from_millis(5),
        || env.sim.count("PUT", "/batch-edit") > 0,
    )
    .await;
    child.kill_hard();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    env.sim.set_faults(Faults::default());
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("in doubt"), "{text}");
    assert_eq!(env.sim.count("PUT", "/batch-edit"), 1, "not sent again");
    assert!(env.sim.batch_edits_applied() <= 1);
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_the_edit() {
    let (mut env, _) = edit_env().await;
    env.job_extra = r#"edit = { attribute = "preco", value = 10, restrictions = { include = { marcas = [1] } } }"#.into();
    let out = env.run_binary(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("edit.attribute") && text.contains("marcas"),
        "{text}"
    );
}

#[tokio::test]
async fn the_simulator_demands_product_id_and_price_cost_on_a_sku_update() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let sku = &catalog.products[0].skus[0];
    let before = sku_prices(&env, sku.id);
    let put = |body: String| {
        reqwest::Client::new()
            .put(format!(
                "{}/loja-teste/catalog/skus/{}",
                env.sim.base_url(),
                sku.id
            ))
            .header("User-Token", TOKEN)
            .header("User-Secret-Key", SECRET)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let r = put(r#"{"price_sale": 99.9}"#.into()).await.unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["errors"]["product_id"].is_array() && body["errors"]["price_cost"].is_array(),
        "{body}"
    );
    assert_eq!(sku_prices(&env, sku.id), before, "nothing applied");
    let ok = format!(
        r#"{{"product_id": {}, "price_cost": 1.5, "price_sale": 99.9}}"#,
        sku.product_id
    );
    let r = put(ok).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        sku_prices(&env, sku.id),
        (d("1.5"), d("99.9"), before.2),
        "omitted fields kept"
    );
}

#[tokio::test]
async fn a_stock_job_and_a_price_job_share_one_file_and_one_mapping() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let mapping = r#"
match = "sku"
key = "Código"
decimal = "comma"
[stock]
quantity = "Saldo"
[price]
price_sale = "Preço"
price_discount = "Promoção"
max_change_pct = 5000
"#;
    std::fs::write(env.path("shared.toml"), mapping).unwrap();
    let mut feed = String::from("Código;Saldo;Preço;Promoção\n");
    for (_, id, code) in all_skus(&catalog) {
        feed.push_str(&format!("{code};{};{},50;0\n", id % 7, 300 + id % 5));
    }
    env.write_feed("estoque-1.csv", &feed);
    let base = env.config_text(true);
    let prices = job_table("precos", "price", "erp/estoque-*.csv", "shared.toml", None);
    let config = base.replace("mapping = \"stock.toml\"", "mapping = \"shared.toml\"") + &prices;
    let path = env.path("shared-config.toml");
    std::fs::write(&path, config).unwrap();
    let (_, reports) = open_config(&path).run(&Default::default()).await;
    for r in &reports {
        assert_eq!(r.exit_code, 0, "{}", r.summary_line());
    }
    for (_, id, _) in all_skus(&catalog) {
        // The default stock is the one with the lowest priority number (stock 1).
        assert_eq!(env.sim.stock(id, 1), Some((id % 7) as i64));
        assert_eq!(
            sku_prices(&env, id).1,
            Decimal::from(300 + id % 5) + d("0.50")
        );
    }
}
