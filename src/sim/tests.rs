//! End-to-end tests of the simulator through a real HTTP client.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::*;

fn client() -> Client {
    Client::builder().no_proxy().build().expect("client")
}

async fn sim_with(config: SimConfig, products: usize, skus: usize) -> Simulator {
    Simulator::start(config, sample_catalog(products, skus, 7))
        .await
        .expect("start")
}

async fn sim(products: usize, skus: usize) -> Simulator {
    sim_with(SimConfig::default(), products, skus).await
}

fn url(sim: &Simulator, rest: &str) -> String {
    format!("{}/demo/{rest}", sim.base_url())
}

async fn get(sim: &Simulator, rest: &str) -> Response {
    client()
        .get(url(sim, rest))
        .header("User-Token", "sim-token")
        .header("User-Secret-Key", "sim-secret")
        .header("Content-Type", "application/json")
        .send()
        .await
        .expect("response")
}

async fn get_json(sim: &Simulator, rest: &str) -> Value {
    let res = get(sim, rest).await;
    assert_eq!(res.status(), StatusCode::OK, "{rest}");
    res.json().await.expect("json")
}

async fn sync(
    client: &Client,
    sim: &Simulator,
    product: u64,
    body: &Value,
) -> reqwest::Result<Response> {
    client
        .post(url(sim, &format!("catalog/products/{product}/stocks/sync")))
        .header("User-Token", "sim-token")
        .header("User-Secret-Key", "sim-secret")
        .json(body)
        .send()
        .await
}

fn header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

fn ids(v: &Value) -> Vec<u64> {
    v["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|s| s["id"].as_u64().expect("id"))
        .collect()
}

#[test]
fn sample_catalog_is_deterministic() {
    let a = sample_catalog(100, 3, 7);
    let b = sample_catalog(100, 3, 7);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.stocks.len(), 2);
    assert_eq!((a.stocks[0].id, a.stocks[0].name.as_str()), (1, "Loja"));
    assert_eq!((a.stocks[1].id, a.stocks[1].name.as_str()), (2, "CD"));
    let p = &a.products[1];
    assert_eq!(p.id, 1001);
    let s = &p.skus[2];
    assert_eq!(s.id, 50005);
    assert_eq!(s.sku, "SKU-01001-3");
    assert_eq!(s.erp_id.as_deref(), Some("ERP50005"));
    assert_eq!(s.barcode.as_deref(), Some("7890000050005"));
    assert_eq!(s.price_sale.scale(), 2);
    assert!(s.price_cost > Decimal::ZERO);
    let all: Vec<_> = a.products.iter().flat_map(|p| &p.skus).collect();
    assert_eq!(all.len(), 300);
    assert!(
        all.iter()
            .all(|s| s.stocks.len() == 2 && s.stocks.iter().all(|r| r.quantity > 0))
    );
}

#[tokio::test]
async fn pagination_with_integers_and_full_links() {
    let sim = sim(5, 3).await; // 15 SKUs
    let v = get_json(&sim, "catalog/skus?limit=4&page=2&search=produto").await;
    assert_eq!(ids(&v), vec![50004, 50005, 50006, 50007]);
    let p = &v["meta"]["pagination"];
    assert_eq!(p["total"], json!(15));
    assert_eq!(p["count"], json!(4));
    assert_eq!(p["per_page"], json!(4));
    assert_eq!(p["current_page"], json!(2));
    assert_eq!(p["total_pages"], json!(4));
    let base = format!("{}/demo/catalog/skus", sim.base_url());
    assert_eq!(
        p["links"]["next"],
        json!(format!("{base}?page=3&limit=4&search=produto"))
    );
    assert_eq!(
        p["links"]["previous"],
        json!(format!("{base}?page=1&limit=4&search=produto"))
    );

    // Following `next` to the end: the last page has no next link at all.
    let last = get_json(&sim, "catalog/skus?limit=4&page=4").await;
    assert_eq!(last["meta"]["pagination"]["count"], json!(3));
    assert!(last["meta"]["pagination"]["links"].get("next").is_none());

    let first = get_json(&sim, "catalog/skus").await;
    assert_eq!(first["meta"]["pagination"]["per_page"], json!(10));
    assert!(
        first["meta"]["pagination"]["links"]
            .get("previous")
            .is_none()
    );
    let clamped = get_json(&sim, "catalog/skus?limit=1000").await;
    assert_eq!(clamped["meta"]["pagination"]["per_page"], json!(100));
    assert_eq!(ids(&clamped).len(), 15);

    let sku = &first["data"][0];
    assert_eq!(sku["sku"], json!("SKU-01000-1"));
    assert_eq!(sku["erp_id"], json!("ERP50000"));
    assert!(sku["price_sale"].is_number());
    assert_eq!(sku["updated_at"]["timezone"], json!("America/Sao_Paulo"));
    assert_eq!(sku["updated_at"]["timezone_type"], json!(3));
    assert_eq!(sku["created_at"]["date"], json!("2025-01-06 09:00:00"));
    let total: i64 = sim.catalog().products[0].skus[0]
        .stocks
        .iter()
        .map(|r| r.quantity)
        .sum();
    assert_eq!(sku["total_in_stock"], json!(total));
}

#[tokio::test]
async fn pagination_with_strings_as_the_endpoint_docs_show() {
    let sim = sim(5, 3).await;
    sim.set_faults(Faults {
        string_pagination: true,
        ..Faults::default()
    });
    let v = get_json(&sim, "catalog/skus?limit=10").await;
    let p = &v["meta"]["pagination"];
    assert_eq!(p["total"], json!("15"));
    assert_eq!(p["count"], json!("10"));
    assert_eq!(p["per_page"], json!("10"));
    assert_eq!(p["current_page"], json!("1"));
    assert_eq!(p["total_pages"], json!("2"));
    assert_eq!(p["links"]["previous"], json!(""));
    assert!(p["links"]["next"].as_str().expect("str").contains("page=2"));
    let last = get_json(&sim, "catalog/skus?limit=10&page=2").await;
    assert_eq!(last["meta"]["pagination"]["links"]["next"], json!(""));
}

#[tokio::test]
async fn sku_filters() {
    let sim = sim(5, 3).await;
    let v = get_json(&sim, "catalog/skus?sku=SKU-01002-2").await;
    assert_eq!(ids(&v), vec![50007]);
    let v = get_json(&sim, "catalog/skus?sku=SKU-01002").await;
    assert!(ids(&v).is_empty(), "sku= is exact");
    let v = get_json(&sim, "catalog/skus?erp_id=ERP50003").await;
    assert_eq!(ids(&v), vec![50003]);
    let v = get_json(&sim, "catalog/skus?barcode=7890000050001").await;
    assert_eq!(ids(&v), vec![50001]);

    // Plain search is fuzzy, so a code prefix matches several SKUs.
    let v = get_json(&sim, "catalog/skus?search=SKU-01002").await;
    assert_eq!(ids(&v), vec![50006, 50007, 50008]);
    let v = get_json(
        &sim,
        "catalog/skus?search=sku:SKU-01002-2&searchFields=sku:=",
    )
    .await;
    assert_eq!(ids(&v), vec![50007]);
    let v = get_json(&sim, "catalog/skus?search=sku:01002-2;erp_id:ERP50000").await;
    assert_eq!(ids(&v), vec![50000, 50007]);
    let v = get_json(
        &sim,
        "catalog/skus?search=sku:01002;erp_id:ERP50008&searchJoin=and",
    )
    .await;
    assert_eq!(ids(&v), vec![50008]);

    // updated_at ranges: a day, exact times, and an edit made now.
    let v = get_json(
        &sim,
        "catalog/skus?date=updated_at:2025-01-06|2025-01-06&limit=100",
    )
    .await;
    assert_eq!(ids(&v).len(), 15);
    let v = get_json(
        &sim,
        "catalog/skus?date=updated_at:2025-01-06%2009:17:00|2025-01-06%2009:34:00",
    )
    .await;
    assert_eq!(ids(&v), vec![50001, 50002]);
    sim.update_sku(50004, |s| s.price_sale = Decimal::new(9990, 2));
    let today = catalog::store_now().date();
    let v = get_json(
        &sim,
        &format!("catalog/skus?date=updated_at:{today}|{today}"),
    )
    .await;
    assert_eq!(ids(&v), vec![50004]);
    assert_eq!(v["data"][0]["price_sale"], json!(99.9));
    let v = get_json(
        &sim,
        "catalog/skus?orderBy=updated_at&sortedBy=desc&limit=2",
    )
    .await;
    assert_eq!(ids(&v), vec![50004, 50014]);

    let res = get(&sim, "catalog/skus?date=updated_at:yesterday").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn stocks_sync_applies_and_reports() {
    let sim = sim(3, 2).await;
    let c = client();
    let body = json!({"skus": [
        {"id": 50002, "stock_id": 1, "quantity": 7, "min_quantity": 1},
        {"id": 50003, "stock_id": 2, "quantity": 0, "min_quantity": 0},
    ]});
    let res = sync(&c, &sim, 1001, &body).await.expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, "x-ratelimit-limit").is_some());
    let v: Value = res.json().await.expect("json");
    assert_eq!(v, json!({"message": "Estoques sincronizados com sucesso"}));
    assert_eq!(sim.stock(50002, 1), Some(7));
    assert_eq!(sim.min_quantity(50002, 1), Some(1));
    assert_eq!(sim.stock(50003, 2), Some(0));
    let touched = sim.catalog().products[1].skus[0].updated_at;
    assert_eq!(touched.date(), catalog::store_now().date());
    let rec = sim.requests();
    assert_eq!(rec.len(), 1);
    assert!(rec[0].applied);
    assert_eq!(rec[0].status, 200);
    assert_eq!(rec[0].path, "/v2/demo/catalog/products/1001/stocks/sync");
    assert_eq!(sim.count("post", "/stocks/sync"), 1);

    // The read side sees the new numbers.
    let v = get_json(&sim, "catalog/products/1001/stocks").await;
    let row = &v["data"][0]["stocks"][0];
    assert_eq!(row["stock"]["name"], json!("Loja"));
    assert_eq!(row["quantity"], json!(7));
    assert_eq!(row["total_reserved"], json!(0));
    let v = get_json(&sim, "catalog/skus/50002/stocks").await;
    assert_eq!(v["data"][0]["quantity"], json!(7));
    assert_eq!(v["data"][0]["stock_id"], json!(1));

    // A SKU with no row for a stock gets one.
    sim.update_sku(50004, |s| s.stocks.retain(|r| r.stock_id != 2));
    assert_eq!(sim.stock(50004, 2), None);
    let body = json!({"skus": [{"id": 50004, "stock_id": 2, "quantity": 3, "min_quantity": 0}]});
    let res = sync(&c, &sim, 1002, &body).await.expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(sim.stock(50004, 2), Some(3));
}

#[tokio::test]
async fn stocks_sync_rejects_bad_bodies_without_applying() {
    let sim = sim(3, 2).await;
    let c = client();
    let before = sim.stock(50000, 1);
    let body = json!({"skus": [
        {"id": 50000, "stock_id": 1, "quantity": 5, "min_quantity": 0},
        {"id": 50001, "stock_id": 1, "quantity": "x", "min_quantity": 0},
    ]});
    let res = sync(&c, &sim, 1000, &body).await.expect("response");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = res.json().await.expect("json");
    assert_eq!(
        v,
        json!({
            "message": "The given data was invalid.",
            "errors": {"skus.1.quantity": ["The skus.1.quantity must be an integer."]}
        })
    );
    assert_eq!(sim.stock(50000, 1), before, "all-or-nothing");
    assert!(!sim.requests()[0].applied);

    let body = json!({"skus": [
        {"id": 50002, "stock_id": 9, "quantity": -1},
    ]});
    let v: Value = sync(&c, &sim, 1000, &body)
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    assert_eq!(
        v["errors"],
        json!({
            "skus.0.id": ["The selected skus.0.id is invalid."],
            "skus.0.stock_id": ["The selected skus.0.stock_id is invalid."],
            "skus.0.quantity": ["The skus.0.quantity must be at least 0."],
            "skus.0.min_quantity": ["The skus.0.min_quantity field is required."],
        })
    );
    for body in [json!({"skus": []}), json!({"data": []})] {
        let v: Value = sync(&c, &sim, 1000, &body)
            .await
            .expect("response")
            .json()
            .await
            .expect("json");
        assert_eq!(
            v["errors"],
            json!({"skus": ["The skus field is required."]})
        );
    }
    let res = sync(&c, &sim, 999, &json!({"skus": []}))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Content-Type is mandatory for bodies; a charset suffix is fine.
    let post = |ct: Option<&'static str>| {
        let mut rb = c
            .post(url(&sim, "catalog/products/1000/stocks/sync"))
            .header("User-Token", "sim-token")
            .header("User-Secret-Key", "sim-secret")
            .body(r#"{"skus":[{"id":50000,"stock_id":1,"quantity":4,"min_quantity":0}]}"#);
        if let Some(ct) = ct {
            rb = rb.header("Content-Type", ct);
        }
        rb.send()
    };
    assert_eq!(
        post(None).await.expect("res").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(Some("text/plain")).await.expect("res").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(sim.stock(50000, 1), before);
    assert_eq!(
        post(Some("application/json; charset=utf-8"))
            .await
            .expect("res")
            .status(),
        StatusCode::OK
    );
    assert_eq!(sim.stock(50000, 1), Some(4));
    assert_eq!(sim.count_status(422), 4);
}

#[tokio::test]
async fn auth_is_required() {
    let sim = sim(1, 1).await;
    let c = client();
    let res = c.get(url(&sim, "catalog/skus")).send().await.expect("res");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&res, "x-ratelimit-limit").as_deref(), Some("30"));
    assert_eq!(header(&res, "x-ratelimit-remaining").as_deref(), Some("29"));
    let v: Value = res.json().await.expect("json");
    assert_eq!(v, json!({"message": "Unauthenticated."}));
    let res = c
        .get(url(&sim, "catalog/skus"))
        .header("User-Token", "sim-token")
        .header("User-Secret-Key", "wrong")
        .send()
        .await
        .expect("res");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .get(format!("{}/ping", sim.base_url()))
        .send()
        .await
        .expect("res");
    assert_eq!(res.status(), StatusCode::OK);
    let rec = sim.requests();
    assert!(
        rec[1]
            .headers
            .iter()
            .any(|(k, v)| k == "user-secret-key" && v == "wrong")
    );
}

#[tokio::test]
async fn routing_errors() {
    let sim = sim(2, 2).await;
    let res = client()
        .get(format!("{}/other/catalog/skus", sim.base_url()))
        .header("User-Token", "sim-token")
        .header("User-Secret-Key", "sim-secret")
        .send()
        .await
        .expect("res");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.json::<Value>().await.expect("json")["message"].is_string());
    assert_eq!(
        get(&sim, "catalog/nothing").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&sim, "catalog/products/4242").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&sim, "catalog/products/1000/stocks/sync")
            .await
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let v = get_json(&sim, "catalog/products?include=skus").await;
    assert_eq!(ids(&v), vec![1000, 1001]);
    assert_eq!(v["data"][0]["skus"]["data"][1]["id"], json!(50001));
    let v = get_json(&sim, "catalog/products/1001").await;
    assert_eq!(v["data"]["id"], json!(1001));
    assert!(v["data"].get("skus").is_none());
    let v = get_json(&sim, "catalog/products/1001/skus").await;
    assert_eq!(ids(&v), vec![50002, 50003]);
    let v = get_json(&sim, "logistics/stocks").await;
    assert_eq!(ids(&v), vec![1, 2]);
    assert_eq!(v["data"][1]["name"], json!("CD"));
    let v = get_json(&sim, "logistics/stocks/2").await;
    assert_eq!(v["data"]["warehouse_id"], json!(2));
}

#[tokio::test]
async fn rate_limit_per_group_with_documented_429() {
    let config = SimConfig {
        // Long enough that a loaded machine cannot roll the window over mid-test.
        window: Duration::from_millis(2000),
        limits: SimLimits {
            get_skus: 3,
            get_products: 3,
            default: 3,
        },
        ..SimConfig::default()
    };
    let sim = sim_with(config, 1, 1).await;
    for remaining in ["2", "1", "0"] {
        let res = get(&sim, "catalog/skus").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&res, "x-ratelimit-remaining").as_deref(),
            Some(remaining)
        );
    }
    let res = get(&sim, "catalog/skus?page=2").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "x-ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(header(&res, "x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(header(&res, "retry-after").is_none());
    assert!(header(&res, "x-ratelimit-reset").is_none());
    let v: Value = res.json().await.expect("json");
    assert_eq!(
        v,
        json!({"message": "Too Many Requests", "status_code": 429})
    );

    // Another group still has its own quota.
    assert_eq!(get(&sim, "logistics/stocks").await.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(2050)).await;
    let res = get(&sim, "catalog/skus").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "x-ratelimit-remaining").as_deref(), Some("2"));
    assert_eq!(sim.count_status(429), 1);

    sim.set_faults(Faults {
        storm_429: true,
        ..Faults::default()
    });
    let res = get(&sim, "logistics/stocks").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "x-ratelimit-remaining").as_deref(), Some("0"));
}

#[tokio::test]
async fn drop_fault_is_a_connection_error() {
    let sim = sim(2, 2).await;
    sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let before = sim.stock(50000, 1);
    let c = client();
    let body = json!({"skus": [{"id": 50000, "stock_id": 1, "quantity": 1, "min_quantity": 0}]});
    let err = sync(&c, &sim, 1000, &body).await.expect_err("dropped");
    assert!(err.status().is_none(), "{err:?}");
    assert_eq!(sim.stock(50000, 1), before, "nothing applied");
    let rec = sim.requests();
    assert_eq!(rec.len(), 1, "no client retry of a dropped write");
    assert_eq!((rec[0].status, rec[0].applied), (0, false));
    assert_eq!(sim.count_status(0), 1);

    sim.set_faults(Faults::default());
    assert_eq!(get(&sim, "catalog/skus").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn apply_then_drop_applies_writes_only() {
    let sim = sim(2, 2).await;
    sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    let c = client();
    // Reads are never affected by apply_then_drop.
    let res = c
        .get(url(&sim, "catalog/skus"))
        .header("User-Token", "sim-token")
        .header("User-Secret-Key", "sim-secret")
        .send()
        .await
        .expect("read ok");
    assert_eq!(res.status(), StatusCode::OK);
    let body = json!({"skus": [{"id": 50001, "stock_id": 2, "quantity": 42, "min_quantity": 2}]});
    let err = sync(&c, &sim, 1000, &body).await.expect_err("dropped");
    assert!(err.status().is_none());
    assert_eq!(sim.stock(50001, 2), Some(42));
    assert_eq!(sim.min_quantity(50001, 2), Some(2));
    let last = sim.requests().pop().expect("recorded");
    assert_eq!((last.status, last.applied), (0, true));
}

#[tokio::test]
async fn error_fault_and_latency() {
    let sim = sim(1, 1).await;
    sim.set_faults(Faults {
        error_rate: 1.0,
        latency: Duration::from_millis(50),
        seed: 3,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let res = get(&sim, "catalog/skus").await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(
        [500, 502, 503].contains(&res.status().as_u16()),
        "{}",
        res.status()
    );
    assert_eq!(header(&res, "x-ratelimit-remaining").as_deref(), Some("29"));
    let v: Value = res.json().await.expect("json");
    assert!(v["message"].is_string());
}

#[tokio::test]
async fn keep_alive_and_shutdown() {
    let sim = sim(1, 1).await;
    let c = client();
    for _ in 0..5 {
        let res = c
            .get(url(&sim, "logistics/stocks"))
            .header("User-Token", "sim-token")
            .header("User-Secret-Key", "sim-secret")
            .send()
            .await
            .expect("res");
        assert_eq!(res.status(), StatusCode::OK);
        res.bytes().await.expect("body");
    }
    assert_eq!(sim.inner.shared.connections.load(Ordering::Relaxed), 1);
    sim.clear_requests();
    assert!(sim.requests().is_empty());
    let addr = sim.addr();
    tokio::time::timeout(Duration::from_secs(2), sim.shutdown())
        .await
        .expect("shutdown is prompt");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn catalog_edits() {
    let sim = sim(1, 2).await;
    let mut sku = sim.catalog().products[0].skus[0].clone();
    sku.id = 60000;
    sku.product_id = 2000;
    sku.sku = "NEW-1".into();
    sku.stocks = vec![SkuStock {
        row_id: 1,
        stock_id: 1,
        quantity: 9,
        min_quantity: 0,
    }];
    sim.add_sku(sku);
    assert_eq!(sim.stock(60000, 1), Some(9));
    let v = get_json(&sim, "catalog/skus?product_id=2000").await;
    assert_eq!(ids(&v), vec![60000]);
    sim.remove_sku(50000);
    let v = get_json(&sim, "catalog/skus").await;
    assert_eq!(ids(&v), vec![50001, 60000]);
    assert_eq!(sim.stock(50000, 1), None);
}

#[tokio::test]
async fn dropped_connection_writes_no_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = sim(1, 1).await;
    sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let mut tcp = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    tcp.write_all(
        b"GET /v2/demo/logistics/stocks HTTP/1.1\r\nHost: x\r\nUser-Token: sim-token\r\nUser-Secret-Key: sim-secret\r\n\r\n",
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut buf))
        .await
        .expect("closed promptly");
    assert!(read.map_or(true, |n| n == 0), "no response bytes");
    assert!(buf.is_empty());
}
