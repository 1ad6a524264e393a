//! Request processing: rate limiting, auth, fault selection, routing and the endpoint handlers.
//! Runs synchronously under the state lock, so every request sees and leaves a consistent store.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use axum::body::{Body, Bytes};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderMap};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::catalog::{
    SkuStock, logistics_stock_json, product_json, product_stock_item_json, sku_json,
    sku_stock_row_json,
};
use super::faults::{self, Fault};
use super::limits::{Group, Verdict};
use super::query::{PageReq, PageStyle, Query, SkuFilter, paginate};
use super::store::{Shared, State, lock};

/// A request as the processing step needs it (body already read).
pub(super) struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Bytes,
    pub headers: HeaderMap,
}

pub(super) struct Reply {
    pub status: u16,
    body: Value,
    rate: Option<(u32, u32)>,
    allow: Option<&'static str>,
    /// The `Date` header (the simulated server's clock).
    date: Option<String>,
    /// A non-JSON body (a hosted file) and its content type.
    raw: Option<(&'static str, Vec<u8>)>,
}

impl Reply {
    pub(super) fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            rate: None,
            allow: None,
            date: None,
            raw: None,
        }
    }

    pub(super) fn raw(status: u16, content_type: &'static str, bytes: Vec<u8>) -> Reply {
        Reply {
            raw: Some((content_type, bytes)),
            ..Reply::new(status, Value::Null)
        }
    }

    fn message(status: u16, message: &str) -> Reply {
        Reply::new(status, json!({ "message": message }))
    }

    pub(super) fn not_found() -> Reply {
        Reply::message(404, "Not Found.")
    }

    /// The documented 429, byte for byte in meaning: no Retry-After or reset header.
    fn too_many(limit: u32) -> Reply {
        Reply {
            rate: Some((limit, 0)),
            ..Reply::new(
                429,
                json!({ "message": "Too Many Requests", "status_code": 429 }),
            )
        }
    }

    pub(super) fn invalid(errors: BTreeMap<String, Vec<String>>) -> Reply {
        Reply::new(
            422,
            json!({ "message": "The given data was invalid.", "errors": errors }),
        )
    }

    pub(super) fn into_response(self) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let content_type = self.raw.as_ref().map_or("application/json", |r| r.0);
        let mut b = Response::builder()
            .status(status)
            .header(CONTENT_TYPE, content_type);
        if let Some((limit, remaining)) = self.rate {
            b = b
                .header("X-RateLimit-Limit", limit)
                .header("X-RateLimit-Remaining", remaining);
        }
        if let Some(allow) = self.allow {
            b = b.header(ALLOW, allow);
        }
        if let Some(date) = &self.date {
            b = b.header(hyper::header::DATE, date.as_str());
        }
        let body = match self.raw {
            Some((_, bytes)) => Body::from(bytes),
            None => Body::from(self.body.to_string()),
        };
        b.body(body)
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

pub(super) enum Outcome {
    Reply(Reply),
    /// Close the connection without writing anything.
    Drop,
    /// Send the reply's status and headers, then body bytes that never end.
    Endless(Reply),
    /// Send the reply's status and headers and half of its body, then nothing, forever.
    Stalled(Reply),
}

pub(super) struct Handled {
    pub outcome: Outcome,
    /// A write changed the store.
    pub applied: bool,
}

impl Handled {
    fn reply(reply: Reply) -> Handled {
        Handled {
            outcome: Outcome::Reply(reply),
            applied: false,
        }
    }
}

/// Order: storm 429 → quota (429 when used up) → auth (ping exempt) → fault draw → routing.
/// Unauthenticated and faulty requests still use quota, as a real server counts them.
pub(super) fn process(shared: &Shared, req: &Req) -> Handled {
    let mut guard = lock(&shared.state);
    let st: &mut State = &mut guard;
    let date = st.http_date();
    let mut handled = process_locked(shared, st, req);
    let faults = &st.faults;
    if let Outcome::Reply(reply) = &mut handled.outcome {
        reply.date = Some(date);
    }
    if faults.endless_body || faults.stalled_body {
        let endless = faults.endless_body;
        handled.outcome = match handled.outcome {
            Outcome::Reply(r) if endless => Outcome::Endless(r),
            Outcome::Reply(r) => Outcome::Stalled(r),
            other => other,
        };
    }
    handled
}

fn process_locked(shared: &Shared, st: &mut State, req: &Req) -> Handled {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    super::prices::settle(st, Instant::now());
    super::queues::settle(st, Instant::now());
    if let ["files", key, name] = segs.as_slice() {
        let reply = if req.method == "GET" {
            super::queues::serve_file(st, key, name)
        } else {
            Reply::not_found()
        };
        return Handled::reply(reply);
    }
    let group = Group::of(&req.method, &segs);
    if st.faults.storm_429 {
        return Handled::reply(Reply::too_many(st.limiter.limit(group)));
    }
    let rate = match st.limiter.hit(group, Instant::now()) {
        Verdict::Limited { limit } => return Handled::reply(Reply::too_many(limit)),
        Verdict::Allowed { limit, remaining } => (limit, remaining),
    };
    let with_rate = |mut r: Reply| {
        r.rate = Some(rate);
        r
    };
    let is_ping = segs == ["v2", "ping"];
    if !is_ping && !authenticated(shared, &req.headers) {
        return Handled::reply(with_rate(Reply::message(401, "Unauthenticated.")));
    }
    let is_write = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
    if let Some(status) = st.faults.echo_headers.filter(|_| is_write) {
        return Handled::reply(with_rate(echo_headers(status, &req.headers)));
    }
    let fault = faults::draw(&st.faults, &mut st.rng, is_write);
    match fault {
        Fault::Drop => {
            return Handled {
                outcome: Outcome::Drop,
                applied: false,
            };
        }
        Fault::Error(status) => {
            return Handled::reply(with_rate(Reply::message(
                status,
                faults::error_message(status),
            )));
        }
        Fault::None | Fault::ApplyThenDrop => {}
    }
    let mut cx = Ctx {
        shared,
        st,
        req,
        segs: &segs,
        applied: false,
    };
    let reply = with_rate(route(&mut cx));
    let applied = cx.applied;
    if fault == Fault::ApplyThenDrop {
        Handled {
            outcome: Outcome::Drop,
            applied,
        }
    } else {
        Handled {
            outcome: Outcome::Reply(reply),
            applied,
        }
    }
}

/// An error whose body repeats the request's headers, credentials included.
fn echo_headers(status: u16, headers: &HeaderMap) -> Reply {
    let echoed: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let line: Vec<String> = echoed.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    Reply::new(
        status,
        json!({
            "message": format!("Request rejected. Request headers were: {}", line.join("; ")),
            "headers": echoed,
        }),
    )
}

fn authenticated(shared: &Shared, headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    header("User-Token") == Some(shared.user_token.as_bytes())
        && header("User-Secret-Key") == Some(shared.user_secret_key.as_bytes())
}

/// `application/json`, optionally with parameters such as `; charset=utf-8`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

pub(super) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub st: &'a mut State,
    pub req: &'a Req,
    segs: &'a [&'a str],
    pub applied: bool,
}

impl Ctx<'_> {
    pub(super) fn query(&self) -> Query {
        Query::parse(&self.req.query)
    }

    /// The caller's `User-Token` (the user notifications belong to).
    pub(super) fn caller_token(&self) -> String {
        self.req
            .headers
            .get("User-Token")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    }

    /// Full URL of the current route, used as the base of pagination links.
    pub(super) fn link_base(&self) -> String {
        format!("http://{}/{}", self.shared.addr, self.segs.join("/"))
    }

    pub(super) fn page_style(&self) -> PageStyle {
        let f = &self.st.faults;
        PageStyle {
            strings: f.string_pagination,
            meta_null: f.meta_null,
            endless: f.endless_pages,
            inflated_total: f.inflated_total,
            wrap: f.wrap_pages,
        }
    }
}

fn route(cx: &mut Ctx) -> Reply {
    let segs = cx.segs;
    match segs {
        ["v2", "ping"] => only("GET", cx, |cx| match cx.st.faults.ping_status {
            Some(status) => Reply::message(status, faults::error_message(status)),
            None => Reply::message(200, "pong"),
        }),
        ["v2", alias, rest @ ..] if *alias == cx.shared.alias => match rest {
            ["catalog", "skus"] => only("GET", cx, list_skus),
            ["catalog", "skus", "export"] => only("GET", cx, super::exports::sku_export),
            ["catalog", "skus", "import"] => only("POST", cx, |cx| {
                if !is_json(&cx.req.headers) {
                    return Reply::message(
                        400,
                        "The Content-Type header must be application/json.",
                    );
                }
                super::imports::sku_import(cx)
            }),
            ["catalog", "stocks", "export-skus"] => only("GET", cx, super::exports::stock_export),
            ["queues"] => only("GET", cx, super::queues::list_queues),
            ["queues", id] => with_id(id, |id| {
                only("GET", cx, |cx| super::queues::show_queue(cx, id))
            }),
            ["queues", id, "logs"] => with_id(id, |id| {
                only("GET", cx, |cx| super::queues::queue_logs(cx, id))
            }),
            ["notifications"] => only("GET", cx, super::notifications::list),
            ["catalog", "skus", id] => with_id(id, |id| match cx.req.method.as_str() {
                "GET" => show_sku(cx, id),
                _ => only("PUT", cx, |cx| put_sku(cx, id)),
            }),
            ["catalog", "products", "batch-edit"] => only("PUT", cx, batch_edit),
            ["catalog", "products", id, "skus", "batch-update-skus"] => {
                with_id(id, |id| only("PUT", cx, |cx| batch_update(cx, id)))
            }
            [
                "catalog",
                "products",
                id,
                "skus",
                "batch-update-skus-progress",
            ] => with_id(id, |id| only("GET", cx, |cx| batch_progress(cx, id))),
            ["catalog", "skus", id, "stocks"] => {
                with_id(id, |id| only("GET", cx, |cx| sku_stocks(cx, id)))
            }
            ["catalog", "products"] => only("GET", cx, list_products),
            ["catalog", "products", id] => {
                with_id(id, |id| only("GET", cx, |cx| show_product(cx, id)))
            }
            ["catalog", "products", id, "skus"] => {
                with_id(id, |id| only("GET", cx, |cx| product_skus(cx, id)))
            }
            ["catalog", "products", id, "stocks"] => {
                with_id(id, |id| only("GET", cx, |cx| product_stocks(cx, id)))
            }
            ["catalog", "products", id, "stocks", "sync"] => {
                with_id(id, |id| only("POST", cx, |cx| sync_stocks(cx, id)))
            }
            ["logistics", "stocks"] => only("GET", cx, list_logistics_stocks),
            ["logistics", "stocks", id] => {
                with_id(id, |id| only("GET", cx, |cx| show_logistics_stock(cx, id)))
            }
            _ => Reply::not_found(),
        },
        ["v2", _, ..] => Reply::message(404, "Store not found."),
        _ => Reply::not_found(),
    }
}

/// Runs `f` for the route's method; another method on a known route gets 405, as Laravel answers.
fn only(allowed: &'static str, cx: &mut Ctx, f: impl FnOnce(&mut Ctx) -> Reply) -> Reply {
    let method = cx.req.method.as_str();
    if method == allowed {
        return f(cx);
    }
    Reply {
        allow: Some(allowed),
        ..Reply::message(
            405,
            &format!(
                "The {method} method is not supported for this route. Supported methods: {allowed}."
            ),
        )
    }
}

/// Route ids are numeric; anything else does not match a route.
fn with_id(raw: &str, f: impl FnOnce(u64) -> Reply) -> Reply {
    match raw.parse::<u64>() {
        Ok(id) => f(id),
        Err(_) => Reply::not_found(),
    }
}

fn list_skus(cx: &mut Ctx) -> Reply {
    let q = cx.query();
    let mut filter = match SkuFilter::parse(&q) {
        Ok(f) => f,
        Err(bad) => {
            return Reply::invalid(BTreeMap::from([(bad.field.to_owned(), vec![bad.message])]));
        }
    };
    let page = PageReq::from_query(&q).page;
    if cx.st.faults.delete_between_pages
        && page == 2
        && let Some(first) = cx.st.skus().map(|s| s.id).min()
    {
        cx.st.remove_sku(first);
    }
    if cx.st.faults.shift_pages && !filter.by_id_asc() {
        filter.newest_first();
        if page >= 2 {
            shift_one(cx.st, &filter);
        }
    }
    let st = &*cx.st;
    let mut hits: Vec<_> = st
        .skus()
        .filter(|s| filter.matches(s, st.created_at(s)))
        .collect();
    filter.sort(&mut hits);
    let body = paginate(
        hits,
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        |s| sku_json(s, st.created_at(s)),
    );
    Reply::new(200, body)
}

/// The `shift_pages` fault: the SKU at the end of the listing's order becomes the newest, so
/// it moves to the front and every later page shifts by one.
fn shift_one(st: &mut State, filter: &SkuFilter) {
    let mut hits: Vec<_> = st
        .skus()
        .filter(|s| filter.matches(s, st.created_at(s)))
        .collect();
    filter.sort(&mut hits);
    let newest = st.skus().map(|s| s.updated_at).max();
    let (Some(last), Some(newest)) = (hits.last().map(|s| s.id), newest) else {
        return;
    };
    if let Some(sku) = st.sku_mut(last) {
        sku.updated_at = newest + chrono::Duration::seconds(1);
    }
}

/// `GET /catalog/skus/{id}`: one SKU, 404 when it does not exist.
fn show_sku(cx: &mut Ctx, id: u64) -> Reply {
    match cx.st.sku(id) {
        Some(sku) => Reply::new(200, json!({ "data": sku_json(sku, cx.st.created_at(sku)) })),
        None => Reply::not_found(),
    }
}

fn sku_stocks(cx: &mut Ctx, sku_id: u64) -> Reply {
    let Some(sku) = cx.st.sku(sku_id) else {
        return Reply::not_found();
    };
    let q = cx.query();
    let body = paginate(
        sku.stocks.iter().collect(),
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        sku_stock_row_json,
    );
    Reply::new(200, body)
}

fn list_products(cx: &mut Ctx) -> Reply {
    let q = cx.query();
    let with_skus = q.includes("skus");
    let st = &*cx.st;
    let mut products: Vec<_> = st.catalog.products.iter().collect();
    products.sort_by_key(|p| p.id);
    let body = paginate(
        products,
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        |p| product_json(p, with_skus.then(|| sorted_skus_json(st, p.id))),
    );
    Reply::new(200, body)
}

fn sorted_skus_json(st: &State, product_id: u64) -> Vec<Value> {
    let Some(product) = st.product(product_id) else {
        return Vec::new();
    };
    let mut skus: Vec<_> = product.skus.iter().collect();
    skus.sort_by_key(|s| s.id);
    skus.into_iter()
        .map(|s| sku_json(s, st.created_at(s)))
        .collect()
}

fn show_product(cx: &mut Ctx, id: u64) -> Reply {
    let Some(product) = cx.st.product(id) else {
        return Reply::not_found();
    };
    let skus = cx
        .query()
        .includes("skus")
        .then(|| sorted_skus_json(cx.st, id));
    Reply::new(200, json!({ "data": product_json(product, skus) }))
}

fn product_skus(cx: &mut Ctx, id: u64) -> Reply {
    if cx.st.product(id).is_none() {
        return Reply::not_found();
    }
    let q = cx.query();
    let body = paginate(
        sorted_skus_json(cx.st, id),
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        |v| v,
    );
    Reply::new(200, body)
}

fn product_stocks(cx: &mut Ctx, id: u64) -> Reply {
    let st = &*cx.st;
    let Some(product) = st.product(id) else {
        return Reply::not_found();
    };
    let mut skus: Vec<_> = product.skus.iter().collect();
    skus.sort_by_key(|s| s.id);
    let data: Vec<Value> = skus
        .into_iter()
        .map(|s| product_stock_item_json(s, &st.catalog.stocks))
        .collect();
    Reply::new(200, json!({ "data": data }))
}

fn list_logistics_stocks(cx: &mut Ctx) -> Reply {
    let q = cx.query();
    let mut stocks: Vec<_> = cx.st.catalog.stocks.iter().collect();
    stocks.sort_by_key(|s| s.id);
    let body = paginate(
        stocks,
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        logistics_stock_json,
    );
    Reply::new(200, body)
}

fn show_logistics_stock(cx: &mut Ctx, id: u64) -> Reply {
    match cx.st.catalog.stocks.iter().find(|s| s.id == id) {
        Some(stock) => Reply::new(200, json!({ "data": logistics_stock_json(stock) })),
        None => Reply::not_found(),
    }
}

/// Runs a price handler: JSON body required, 422 for validation errors, `applied` on success.
fn write(
    cx: &mut Ctx,
    f: impl FnOnce(&mut State, &[u8]) -> Result<(u16, Value), BTreeMap<String, Vec<String>>>,
) -> Reply {
    if !is_json(&cx.req.headers) {
        return Reply::message(400, "The Content-Type header must be application/json.");
    }
    match f(cx.st, &cx.req.body) {
        Ok((status, body)) => {
            cx.applied = (200..300).contains(&status);
            Reply::new(status, body)
        }
        Err(errors) => Reply::invalid(errors),
    }
}

fn put_sku(cx: &mut Ctx, id: u64) -> Reply {
    write(cx, |st, body| super::prices::put_sku(st, id, body))
}

fn batch_update(cx: &mut Ctx, id: u64) -> Reply {
    write(cx, |st, body| super::prices::batch_update(st, id, body))
}

fn batch_edit(cx: &mut Ctx) -> Reply {
    write(cx, super::prices::batch_edit)
}

fn batch_progress(cx: &mut Ctx, id: u64) -> Reply {
    let (status, body) = super::prices::batch_progress(cx.st, id);
    Reply::new(status, body)
}

/// One validated `skus[]` entry of a stocks/sync body.
struct StockSet {
    sku_id: u64,
    stock_id: u64,
    quantity: i64,
    min_quantity: i64,
}

/// `POST /catalog/products/{id}/stocks/sync` with the documented body
/// `{"skus": [{"id", "stock_id", "quantity", "min_quantity"}]}` (all required integers).
/// Everything is validated before anything is applied.
fn sync_stocks(cx: &mut Ctx, product_id: u64) -> Reply {
    if !is_json(&cx.req.headers) {
        return Reply::message(400, "The Content-Type header must be application/json.");
    }
    let Some(product) = cx.st.product(product_id) else {
        return Reply::not_found();
    };
    let product_skus: HashSet<u64> = product.skus.iter().map(|s| s.id).collect();
    let stock_ids: HashSet<u64> = cx.st.catalog.stocks.iter().map(|s| s.id).collect();
    let body: Option<Value> = serde_json::from_slice(&cx.req.body).ok();
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut fail = |key: String, msg: String| errors.entry(key).or_default().push(msg);

    let entries: &[Value] = match body.as_ref().and_then(|b| b.get("skus")) {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) | Some(Value::Null) | None => {
            fail("skus".into(), "The skus field is required.".into());
            &[]
        }
        Some(_) => {
            fail("skus".into(), "The skus must be an array.".into());
            &[]
        }
    };
    let mut sets = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let mut field = |name: &str| -> Option<i64> {
            let key = format!("skus.{i}.{name}");
            match entry.get(name) {
                None | Some(Value::Null) => {
                    fail(key.clone(), format!("The {key} field is required."));
                    None
                }
                Some(v) => {
                    // Strict: only JSON integers, as the docs type these fields `int`.
                    let n = v.as_i64();
                    if n.is_none() {
                        fail(key.clone(), format!("The {key} must be an integer."));
                    }
                    n
                }
            }
        };
        let (id, stock_id, quantity, min_quantity) = (
            field("id"),
            field("stock_id"),
            field("quantity"),
            field("min_quantity"),
        );
        let id = id.and_then(|id| {
            let ok = u64::try_from(id)
                .ok()
                .filter(|id| product_skus.contains(id));
            if ok.is_none() {
                let key = format!("skus.{i}.id");
                fail(key.clone(), format!("The selected {key} is invalid."));
            }
            ok
        });
        let stock_id = stock_id.and_then(|sid| {
            let ok = u64::try_from(sid)
                .ok()
                .filter(|sid| stock_ids.contains(sid));
            if ok.is_none() {
                let key = format!("skus.{i}.stock_id");
                fail(key.clone(), format!("The selected {key} is invalid."));
            }
            ok
        });
        let mut at_least_zero = |name: &str, n: Option<i64>| {
            n.filter(|n| {
                if *n < 0 {
                    let key = format!("skus.{i}.{name}");
                    fail(key.clone(), format!("The {key} must be at least 0."));
                }
                *n >= 0
            })
        };
        let quantity = at_least_zero("quantity", quantity);
        let min_quantity = at_least_zero("min_quantity", min_quantity);
        if let (Some(sku_id), Some(stock_id), Some(quantity), Some(min_quantity)) =
            (id, stock_id, quantity, min_quantity)
        {
            sets.push(StockSet {
                sku_id,
                stock_id,
                quantity,
                min_quantity,
            });
        }
    }
    if !errors.is_empty() {
        return Reply::invalid(errors);
    }

    let now = cx.st.now();
    for set in sets {
        let has_row = cx
            .st
            .sku(set.sku_id)
            .is_some_and(|s| s.stocks.iter().any(|r| r.stock_id == set.stock_id));
        let new_row_id = (!has_row).then(|| cx.st.take_row_id());
        let Some(sku) = cx.st.sku_mut(set.sku_id) else {
            continue;
        };
        match new_row_id {
            Some(row_id) => sku.stocks.push(SkuStock {
                row_id,
                stock_id: set.stock_id,
                quantity: set.quantity,
                min_quantity: set.min_quantity,
            }),
            None => {
                for row in sku.stocks.iter_mut().filter(|r| r.stock_id == set.stock_id) {
                    row.quantity = set.quantity;
                    row.min_quantity = set.min_quantity;
                }
            }
        }
        sku.updated_at = now;
    }
    cx.applied = true;
    Reply::message(200, "Estoques sincronizados com sucesso")
}
