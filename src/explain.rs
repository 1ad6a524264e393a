//! `explain JOB KEY`: why a SKU has the value it has, from what the state store and the files
//! already hold — the SKU index entry, the newest source file's row and cells as read, each rule
//! applied (the same functions the runs use: `pipeline::feed`, `plan`, `price_plan`), the value
//! last pushed and when, the last run and its report rows, and writes in doubt.
//!
//! Read-only: it never contacts the store. When a running process holds the state store, what
//! can be read without it (the status snapshot, the newest report, the source file) is shown and
//! what is missing is said.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::{JobKind, JobSettings, Settings};
use crate::index::{KeyMatch, SkuIndex};
use crate::mapping::{Mapping, MinQuantity, StockTarget, cell_key, cell_text, normalize_key};
use crate::model::IndexedSku;
use crate::pipeline::feed::{price_row_parser, read_price_feed, read_stock_feed, stock_row_parser};
use crate::pipeline::plan::{RuleStep, stock_quantity};
use crate::pipeline::price_plan::price_rules;
use crate::report::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::runtime::load_settings;
use crate::state::{OpKind, RunRecord, StateError, StateStore, price_key, stock_key};

/// At most this many file rows and report rows are shown for one key.
const MAX_ROWS: usize = 20;
/// Reports larger than this are not opened (a sheet is read whole).
const MAX_REPORT_BYTES: u64 = 32_000_000;

pub fn run(config_path: &Path, state_dir: Option<&Path>, job: &str, key: &str, json: bool) -> i32 {
    let Some(settings) = load_settings(config_path, state_dir) else {
        return EXIT_INVALID;
    };
    let Some(job) = settings.jobs.iter().find(|j| j.name == job) else {
        let names: Vec<&str> = settings.jobs.iter().map(|j| j.name.as_str()).collect();
        eprintln!(
            "error: no job named \"{job}\" in {} (jobs: {})",
            config_path.display(),
            names.join(", ")
        );
        return EXIT_INVALID;
    };
    if !matches!(job.kind, JobKind::Stock | JobKind::Price) {
        eprintln!(
            "error: job {} is a {} job; explain covers stock and price jobs (for batch edits see `status`)",
            job.name,
            job.kind.as_str()
        );
        return EXIT_INVALID;
    }
    let explained = match explain(&settings, job, key) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&explained).unwrap_or_default()
        );
    } else {
        print!("{}", render(&explained, settings.timezone));
    }
    EXIT_OK
}

/// The state store when it can be read: `Ok(None)` with a note when nothing was recorded yet or
/// another process holds it.
fn open_state(settings: &Settings) -> Result<(Option<StateStore>, Option<String>), StateError> {
    let dir = &settings.state_dir;
    // Opening would create a state dir: nothing recorded means nothing to read.
    if !dir.join("db").exists() {
        return Ok((
            None,
            Some(format!(
                "the state dir {} has no database yet: no run of this job was recorded",
                dir.display()
            )),
        ));
    }
    match StateStore::open(dir) {
        Ok(s) => Ok((Some(s), None)),
        Err(StateError::Locked { pid, .. }) => Ok((
            None,
            Some(format!(
                "the state dir {} is held by a running yampi-sync process{pid}: the SKU index, the pushed values and the writes in doubt are not shown (run explain again once it is stopped or between its runs); the last run comes from its status snapshot",
                dir.display()
            )),
        )),
        Err(e) => Err(e),
    }
}

fn explain(settings: &Settings, job: &JobSettings, key: &str) -> Result<Value, String> {
    let (Some(mapping), Some(_)) = (&job.mapping, &job.source) else {
        return Err(format!("job {} has no source or mapping", job.name));
    };
    let norm = normalize_key(key);
    let (state, note) = open_state(settings).map_err(|e| e.to_string())?;
    let mut missing: Vec<String> = note.into_iter().collect();

    // The SKU index and what the key matches in it.
    let index: Option<SkuIndex> = match &state {
        Some(s) => Some(SkuIndex {
            skus: s.index_load(&job.store).map_err(|e| e.to_string())?,
            ..SkuIndex::default()
        }),
        None => None,
    };
    let lookup = index
        .as_ref()
        .map(|i| i.lookup(mapping.match_field))
        .unwrap_or_default();
    let matched: Vec<&IndexedSku> = match (lookup.get(&norm), &index) {
        (Some(KeyMatch::One(id)), Some(i)) => i.skus.get(id).into_iter().collect(),
        (Some(KeyMatch::Ambiguous(ids)), Some(i)) => {
            ids.iter().filter_map(|id| i.skus.get(id)).collect()
        }
        _ => Vec::new(),
    };
    let index_json = index_section(job, mapping, index.as_ref(), &matched, &norm);
    let one = (matched.len() == 1).then(|| matched[0]);

    // The newest file, its rows for the key, and what the run's reader makes of them.
    let file = source_section(job, mapping, &lookup, index.is_some(), one, &norm);

    // The rules, for the row the run uses.
    let used = file["used"].clone();
    let rules = match (one, used.is_null()) {
        (Some(sku), false) => rules_section(job, mapping, state.as_ref(), sku, &file),
        (Some(_), true) if job.kind == JobKind::Stock => {
            let missing_rule = mapping.stock.as_ref().map(|s| s.missing);
            json!({"note": match missing_rule {
                Some(crate::mapping::Missing::Zero) if file["rows"].as_array().is_some_and(Vec::is_empty) =>
                    "the key is not in the file and missing = \"zero\": the run sets its stock to 0",
                _ => "no usable row in the file: the run leaves its values alone",
            }})
        }
        _ => Value::Null,
    };

    // What this job last pushed, and writes in doubt.
    let (pushed, in_doubt) = match (&state, one) {
        (Some(s), Some(sku)) => (
            pushed_section(s, job, sku).map_err(|e| e.to_string())?,
            doubt_section(s, job, sku).map_err(|e| e.to_string())?,
        ),
        _ => (Value::Null, Value::Null),
    };

    // The last run and its report rows for the key.
    let last_run: Option<RunRecord> = match &state {
        Some(s) => s.last_run(&job.name).map_err(|e| e.to_string())?,
        None => snapshot_run(&settings.state_dir, &job.name),
    };
    let report_rows = last_run
        .as_ref()
        .and_then(|r| r.report.as_deref())
        .map(|p| report_rows(Path::new(p), &norm, one.map(|s| s.id)))
        .unwrap_or(Value::Null);
    if last_run.is_none() && state.is_some() {
        missing.push(format!("no run of job {} is recorded yet", job.name));
    }

    Ok(json!({
        "job": job.name,
        "kind": job.kind.as_str(),
        "store": job.store,
        "key": key,
        "normalized_key": norm,
        "match": mapping.match_field.as_str(),
        "index": index_json,
        "source": file,
        "rules": rules,
        "pushed": pushed,
        "writes_in_doubt": in_doubt,
        "last_run": last_run,
        "report_rows": report_rows,
        "missing": missing,
    }))
}

fn sku_json(s: &IndexedSku) -> Value {
    json!({
        "sku_id": s.id,
        "product_id": s.product_id,
        "sku": s.sku,
        "erp_id": s.erp_id,
        "barcode": s.barcode,
        "price_sale": s.price_sale.map(|d| format!("{d:.2}")),
        "price_discount": s.price_discount.map(|d| format!("{d:.2}")),
        "price_cost": s.price_cost.map(|d| format!("{d:.2}")),
        "total_in_stock": s.total_in_stock,
        "updated_at": s.updated_at,
    })
}

fn index_section(
    job: &JobSettings,
    mapping: &Mapping,
    index: Option<&SkuIndex>,
    matched: &[&IndexedSku],
    norm: &str,
) -> Value {
    let field = mapping.match_field.as_str();
    let Some(index) = index else {
        return json!({"status": "unavailable", "skus": []});
    };
    let skus: Vec<Value> = matched.iter().map(|s| sku_json(s)).collect();
    let (status, note) = match matched.len() {
        0 => {
            // The key may be another field of a SKU: say which, so the mapping's `match` can be fixed.
            let elsewhere = index.skus.values().find_map(|s| {
                [
                    ("sku", Some(s.sku.as_str())),
                    ("erp_id", s.erp_id.as_deref()),
                    ("barcode", s.barcode.as_deref()),
                ]
                .into_iter()
                .find(|(f, v)| *f != field && v.is_some_and(|v| normalize_key(v) == norm))
                .map(|(f, _)| format!("SKU {} has it as its {f}", s.id))
            });
            (
                "not_found",
                format!(
                    "no SKU of store {} in the index ({} SKUs) has this {field}{}",
                    job.store,
                    index.skus.len(),
                    elsewhere
                        .map(|e| format!(" ({e}; the mapping matches on {field})"))
                        .unwrap_or_default()
                ),
            )
        }
        1 => ("one", format!("matched on {field}")),
        n => (
            "shared",
            format!(
                "{n} store SKUs share this {field}: the run never syncs it (which one is meant is unknown)"
            ),
        ),
    };
    json!({"status": status, "note": note, "skus": skus})
}

/// The cells of one file row for the key, and its values as the run's parser reads them.
fn source_section(
    job: &JobSettings,
    mapping: &Mapping,
    lookup: &HashMap<String, KeyMatch>,
    has_index: bool,
    one: Option<&IndexedSku>,
    norm: &str,
) -> Value {
    let Some(src) = &job.source else {
        return Value::Null;
    };
    let path = match crate::source::pick_newest(&src.path, std::time::Duration::ZERO) {
        Ok(p) => match p.path {
            Some(p) => p,
            None => return json!({"error": format!("no file matches {}", src.path)}),
        },
        Err(e) => return json!({"error": e.to_string()}),
    };
    let columns = match job.kind {
        JobKind::Price => mapping.price_columns(),
        _ => mapping.stock_columns(),
    };
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut rows: Vec<Value> = Vec::new();
    let mut more = 0u64;
    let scanned = crate::source::open(&path, src.format, src.sheet.as_deref()).and_then(|mut o| {
        let idx = o.resolve(&wanted)?;
        let stock_parse = (job.kind == JobKind::Stock).then(|| stock_row_parser(mapping));
        let price_parse = (job.kind == JobKind::Price).then(|| price_row_parser(mapping));
        o.for_each_row(&idx, &mut |row, cells| {
            if cell_key(&cells[0]).map(|k| normalize_key(&k)).as_deref() != Some(norm) {
                return;
            }
            if rows.len() >= MAX_ROWS {
                more += 1;
                return;
            }
            let cells_json: Vec<Value> = columns
                .iter()
                .zip(cells)
                .map(|(c, v)| json!({"column": c, "text": cell_text(v)}))
                .collect();
            let parsed = match (&stock_parse, &price_parse) {
                (Some(p), _) => match p(&cells[1..]) {
                    Ok(v) => json!({"quantities": v.quantities.iter().map(|(t, q)| json!({
                        "stock": target_text(*t), "quantity": q})).collect::<Vec<_>>(),
                        "min_quantity": v.min_quantity}),
                    Err(problems) => problems_json(&problems),
                },
                (_, Some(p)) => match p(&cells[1..]) {
                    Ok(v) => json!({
                        "price_sale": v.sale.map(|d| d.to_string()),
                        "price_discount": v.discount.map(|d| d.to_string()),
                        "price_cost": v.cost.map(|d| d.to_string()),
                    }),
                    Err(problems) => problems_json(&problems),
                },
                _ => Value::Null,
            };
            rows.push(json!({"row": row, "cells": cells_json, "read": parsed}));
        })
    });
    if let Err(e) = scanned {
        return json!({"file": path.display().to_string(), "error": e.to_string()});
    }
    // What the run's own reader decides for these rows (rejections, duplicates, no match).
    let read = match job.kind {
        JobKind::Price => read_price_feed(&path, src.format, src.sheet.as_deref(), mapping, lookup)
            .map(|f| {
                (
                    f.rejected,
                    f.unmatched,
                    f.rows.get(&one.map_or(0, |s| s.id)).map(|r| r.row),
                )
            }),
        _ => read_stock_feed(&path, src.format, src.sheet.as_deref(), mapping, lookup).map(|f| {
            (
                f.rejected,
                f.unmatched,
                f.rows.get(&one.map_or(0, |s| s.id)).map(|r| r.row),
            )
        }),
    };
    let row_numbers: Vec<u64> = rows.iter().filter_map(|r| r["row"].as_u64()).collect();
    let (verdict, used) = match read {
        Ok((rejected, unmatched, used_row)) => {
            let mut v: Vec<Value> = rejected
                .iter()
                .filter(|r| row_numbers.contains(&r.row))
                .map(|r| json!({"row": r.row, "outcome": "rejected", "column": r.column, "value": r.value, "reason": r.reason}))
                .collect();
            // Without the index every key looks unmatched: say nothing rather than mislead.
            v.extend(
                unmatched
                    .iter()
                    .filter(|_| has_index)
                    .filter(|u| row_numbers.contains(&u.row))
                    .map(|u| json!({"row": u.row, "outcome": "unmatched", "reason": u.reason.to_string()})),
            );
            let used =
                used_row.and_then(|r| rows.iter().find(|x| x["row"].as_u64() == Some(r)).cloned());
            (v, used.unwrap_or(Value::Null))
        }
        Err(e) => (
            vec![json!({"outcome": "error", "reason": e.to_string()})],
            Value::Null,
        ),
    };
    let note = if rows.is_empty() {
        Some(format!(
            "the key is not in {} (column {})",
            path.display(),
            mapping.key
        ))
    } else {
        None
    };
    json!({
        "file": path.display().to_string(),
        "rows": rows,
        "more_rows": more,
        "verdict": verdict,
        "used": used,
        "note": note,
    })
}

fn problems_json(problems: &[crate::pipeline::feed::CellProblem]) -> Value {
    json!({"refused": problems.iter().map(|(c, v, r)| json!({"column": c, "text": v, "reason": r})).collect::<Vec<_>>()})
}

fn target_text(t: StockTarget) -> String {
    match t {
        StockTarget::Default => "default".into(),
        StockTarget::Stock(id) => id.to_string(),
    }
}

fn steps_json(steps: &[RuleStep]) -> Value {
    serde_json::to_value(steps).unwrap_or(Value::Null)
}

/// Each rule the run applies to the used row, with its intermediate values.
fn rules_section(
    job: &JobSettings,
    mapping: &Mapping,
    state: Option<&StateStore>,
    sku: &IndexedSku,
    file: &Value,
) -> Value {
    let used = &file["used"];
    let cells = used["cells"].as_array().cloned().unwrap_or_default();
    let cell_of = |col: &str| {
        cells
            .iter()
            .find(|c| c["column"] == col)
            .and_then(|c| c["text"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    match job.kind {
        JobKind::Stock => {
            let Some(stock) = &mapping.stock else {
                return Value::Null;
            };
            let read = used["read"]["quantities"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut out = Vec::new();
            for ((target, col), r) in stock.columns.iter().zip(read) {
                let q = r["quantity"].as_i64().unwrap_or(0);
                let mut steps = vec![
                    RuleStep {
                        rule: "read".into(),
                        detail: format!("cell {col} = \"{}\"", cell_of(col)),
                        value: q.to_string(),
                    },
                    RuleStep {
                        rule: "max_quantity".into(),
                        detail: format!("within {}", stock.max_quantity),
                        value: q.to_string(),
                    },
                ];
                let value = stock_quantity(q, stock.reserve, Some(&mut steps));
                let stock_id = match target {
                    StockTarget::Default => stock
                        .default_stock_id
                        .map_or("the store's default stock".into(), |id| id.to_string()),
                    StockTarget::Stock(id) => id.to_string(),
                };
                out.push(json!({"field": format!("quantity (stock {stock_id})"), "steps": steps_json(&steps), "value": value}));
            }
            let min = match &stock.min_quantity {
                MinQuantity::Fixed(n) => {
                    json!({"field": "min_quantity", "steps": [{"rule": "fixed", "detail": "min_quantity in the mapping", "value": n.to_string()}], "value": n})
                }
                MinQuantity::Column(c) => {
                    json!({"field": "min_quantity", "steps": [{"rule": "read", "detail": format!("cell {c} = \"{}\"", cell_of(c)), "value": used["read"]["min_quantity"].to_string()}], "value": used["read"]["min_quantity"]})
                }
            };
            out.push(min);
            json!({"fields": out})
        }
        JobKind::Price => {
            let Some(pm) = &mapping.price else {
                return Value::Null;
            };
            let dec = |f: &str| used["read"][f].as_str().and_then(|s| s.parse().ok());
            let raw = crate::model::PriceFields {
                sale: dec("price_sale"),
                discount: dec("price_discount"),
                cost: dec("price_cost"),
            };
            let pushed = state
                .and_then(|s| s.prices_pushed_of(&job.name, sku.id).ok())
                .map(|p| p.0)
                .unwrap_or_default();
            let mut steps = Vec::new();
            let decision = price_rules(raw, sku, pushed, pm, false, Some(&mut steps));
            let money = |d: Option<rust_decimal::Decimal>| d.map(|d| format!("{d:.2}"));
            let result = match &decision.result {
                Ok(changed) if *changed == crate::model::PriceFields::default() => {
                    json!({"outcome": "unchanged", "note": "every value equals what this job last pushed: nothing to send"})
                }
                Ok(changed) => json!({"outcome": "send", "fields": {
                    "price_sale": money(changed.sale), "price_discount": money(changed.discount), "price_cost": money(changed.cost)}}),
                Err(r) => {
                    json!({"outcome": "refused", "column": r.column, "value": format!("{:.2}", r.value), "reason": r.reason})
                }
            };
            json!({
                "cells": {"price_sale": cell_of(&pm.price_sale),
                          "price_discount": pm.price_discount.as_deref().map(cell_of),
                          "price_cost": pm.price_cost.as_deref().map(cell_of)},
                "steps": steps_json(&steps),
                "want": {"price_sale": money(decision.want.sale), "price_discount": money(decision.want.discount), "price_cost": money(decision.want.cost)},
                "result": result,
            })
        }
        _ => Value::Null,
    }
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn pushed_section(
    state: &StateStore,
    job: &JobSettings,
    sku: &IndexedSku,
) -> Result<Value, StateError> {
    match job.kind {
        JobKind::Stock => {
            let values = state.stock_pushed_of(&job.name, sku.id)?;
            Ok(Value::Array(
                values
                    .into_iter()
                    .map(|(stock, p, at)| json!({"field": format!("quantity (stock {stock})"), "stock_id": stock, "quantity": p.quantity, "min_quantity": p.min_quantity, "at": time(at)}))
                    .collect(),
            ))
        }
        _ => {
            let (p, t) = state.prices_pushed_of(&job.name, sku.id)?;
            let mut out = Vec::new();
            for (f, v, at) in [
                ("price_sale", p.sale, t.sale),
                ("price_discount", p.discount, t.discount),
                ("price_cost", p.cost, t.cost),
            ] {
                if let Some(v) = v {
                    out.push(json!({"field": f, "value": format!("{v:.2}"), "at": time(at)}));
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// The ledger's writes for this SKU whose outcome is unknown.
fn doubt_section(
    state: &StateStore,
    job: &JobSettings,
    sku: &IndexedSku,
) -> Result<Value, StateError> {
    let keys = [stock_key(sku.product_id), price_key(sku.id)];
    let mut out = Vec::new();
    for op in state.ledger(&job.name)?.pending()? {
        if op.kind == OpKind::BatchEdit || !keys.contains(&op.key) {
            continue;
        }
        // A product's stocks/sync carries all its SKUs: show this one's entries.
        let intent = match op.intent.as_array() {
            Some(entries) => Value::Array(
                entries
                    .iter()
                    .filter(|e| e["sku_id"].as_u64() == Some(sku.id))
                    .cloned()
                    .collect(),
            ),
            None => op.intent.clone(),
        };
        out.push(json!({
            "key": op.key,
            "intended_at": op.at.to_rfc3339(),
            "intent": intent,
            "why_unknown": op.unknown.clone().unwrap_or_else(|| "sent, then no answer was recorded (the process stopped)".into()),
        }));
    }
    Ok(Value::Array(out))
}

/// The last run as the running process's status snapshot records it.
fn snapshot_run(state_dir: &Path, job: &str) -> Option<RunRecord> {
    let snap = crate::status::read_snapshot(state_dir)?;
    let row = snap["jobs"].as_array()?.iter().find(|r| r["job"] == job)?;
    serde_json::from_value(row["last_run"].clone()).ok()
}

/// Every report row that names the key (or the SKU id, in a column named so), per sheet, as
/// header → cell text.
fn report_rows(path: &Path, norm: &str, sku_id: Option<u64>) -> Value {
    use calamine::Reader;
    let file = path.display().to_string();
    // calamine reads a sheet whole: a report of millions of rows is not loaded for one key.
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_REPORT_BYTES => {
            return json!({"file": file, "error": format!(
                "the report is {} MB, more than explain reads ({} MB): open it and look for the key there",
                m.len() / 1_000_000, MAX_REPORT_BYTES / 1_000_000)});
        }
        Ok(_) => {}
        Err(e) => return json!({"file": file, "error": format!("cannot read the report: {e}")}),
    }
    let mut wb = match calamine::open_workbook_auto(PathBuf::from(path)) {
        Ok(wb) => wb,
        Err(e) => return json!({"file": file, "error": format!("cannot read the report: {e}")}),
    };
    let tagged = format!("(key {norm})");
    let mut out = Vec::new();
    for name in wb.sheet_names() {
        if name == "Summary" || name == "Resumo" {
            continue;
        }
        let Ok(range) = wb.worksheet_range(&name) else {
            continue;
        };
        let mut rows = range.rows();
        let Some(header) = rows.next() else {
            continue;
        };
        let header: Vec<String> = header.iter().map(|c| c.to_string()).collect();
        for r in rows {
            let texts: Vec<String> = r.iter().map(|c| c.to_string()).collect();
            let names_it = texts.iter().enumerate().any(|(i, t)| {
                let t = normalize_key(t);
                t == norm
                    || t.contains(&tagged)
                    || sku_id.is_some_and(|id| {
                        t == id.to_string()
                            && header
                                .get(i)
                                .is_some_and(|h| h.to_lowercase().contains("sku"))
                    })
            });
            if !names_it {
                continue;
            }
            let cells: serde_json::Map<String, Value> = header
                .iter()
                .zip(&texts)
                .map(|(h, t)| (h.clone(), Value::String(t.clone())))
                .collect();
            out.push(json!({"sheet": name, "cells": cells}));
            if out.len() >= MAX_ROWS {
                break;
            }
        }
    }
    json!({"file": file, "rows": out})
}

/// The human form.
fn render(v: &Value, tz: chrono_tz::Tz) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        x => x.to_string(),
    };
    let at = |v: &Value| match v.as_str() {
        Some(t) => crate::status::local_time(t, tz),
        None => "unknown time (pushed by an earlier version)".into(),
    };
    let _ = writeln!(
        o,
        "{} \"{}\" in job {} ({}, store {})",
        v["match"].as_str().unwrap_or("key"),
        s(&v["key"]),
        s(&v["job"]),
        s(&v["kind"]),
        s(&v["store"])
    );
    for m in v["missing"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "note: {}", s(m));
    }
    let _ = writeln!(o, "\nSKU index:");
    match v["index"]["status"].as_str() {
        Some("unavailable") => {
            let _ = writeln!(o, "  not available");
        }
        _ => {
            let _ = writeln!(o, "  {}", s(&v["index"]["note"]));
            for k in v["index"]["skus"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "  SKU {} (product {}): sku {}, erp_id {}, barcode {}; store prices sale {} discount {} cost {}, stock {}",
                    s(&k["sku_id"]),
                    s(&k["product_id"]),
                    s(&k["sku"]),
                    or_dash(&k["erp_id"]),
                    or_dash(&k["barcode"]),
                    or_dash(&k["price_sale"]),
                    or_dash(&k["price_discount"]),
                    or_dash(&k["price_cost"]),
                    or_dash(&k["total_in_stock"])
                );
            }
        }
    }
    let src = &v["source"];
    let _ = writeln!(o, "\nSource file: {}", s(&src["file"]));
    if !src["error"].is_null() {
        let _ = writeln!(o, "  error: {}", s(&src["error"]));
    }
    if !src["note"].is_null() {
        let _ = writeln!(o, "  {}", s(&src["note"]));
    }
    for r in src["rows"].as_array().into_iter().flatten() {
        let cells: Vec<String> = r["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} = \"{}\"", s(&c["column"]), s(&c["text"])))
            .collect();
        let _ = writeln!(o, "  row {}: {}", s(&r["row"]), cells.join(", "));
    }
    if src["more_rows"].as_u64().is_some_and(|n| n > 0) {
        let _ = writeln!(
            o,
            "  … and {} more rows with this key",
            s(&src["more_rows"])
        );
    }
    for x in src["verdict"].as_array().into_iter().flatten() {
        let what = match x["outcome"].as_str() {
            Some("rejected") => format!(
                "rejected (column {}, value \"{}\"): {}",
                s(&x["column"]),
                s(&x["value"]),
                s(&x["reason"])
            ),
            Some(o) => format!("{o}: {}", s(&x["reason"])),
            None => s(&x["reason"]),
        };
        let _ = writeln!(o, "  row {}: {what}", or_dash(&x["row"]));
    }
    let rules = &v["rules"];
    if !rules.is_null() {
        let _ = writeln!(
            o,
            "\nRules (as a run now applies them to this row; what the last run did is below):"
        );
        if !rules["note"].is_null() {
            let _ = writeln!(o, "  {}", s(&rules["note"]));
        }
        let step_line = |o: &mut String, st: &Value| {
            let value = s(&st["value"]);
            if value.is_empty() {
                let _ = writeln!(o, "    {}: {}", s(&st["rule"]), s(&st["detail"]));
            } else {
                let _ = writeln!(o, "    {}: {} → {value}", s(&st["rule"]), s(&st["detail"]));
            }
        };
        for f in rules["fields"].as_array().into_iter().flatten() {
            let _ = writeln!(o, "  {} = {}", s(&f["field"]), s(&f["value"]));
            for st in f["steps"].as_array().into_iter().flatten() {
                step_line(&mut o, st);
            }
        }
        if rules["steps"].is_array() {
            for st in rules["steps"].as_array().into_iter().flatten() {
                step_line(&mut o, st);
            }
            let r = &rules["result"];
            match r["outcome"].as_str() {
                Some("refused") => {
                    let _ = writeln!(
                        o,
                        "  refused (column {}, {}): {}",
                        s(&r["column"]),
                        s(&r["value"]),
                        s(&r["reason"])
                    );
                }
                Some("send") => {
                    let fields: Vec<String> = r["fields"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| format!("{k} {}", s(v)))
                        .collect();
                    let _ = writeln!(o, "  to send: {}", fields.join(", "));
                }
                _ => {
                    let _ = writeln!(o, "  {}", s(&r["note"]));
                }
            }
        }
    }
    if let Some(p) = v["pushed"].as_array() {
        let _ = writeln!(o, "\nLast pushed by this job:");
        if p.is_empty() {
            let _ = writeln!(o, "  nothing yet");
        }
        for x in p {
            let value = if x["quantity"].is_null() {
                s(&x["value"])
            } else {
                format!("{} (min {})", s(&x["quantity"]), s(&x["min_quantity"]))
            };
            let _ = writeln!(o, "  {} = {} at {}", s(&x["field"]), value, at(&x["at"]));
        }
    }
    if let Some(d) = v["writes_in_doubt"].as_array() {
        let _ = writeln!(o, "\nWrites in doubt:");
        if d.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for x in d {
            let _ = writeln!(
                o,
                "  {} intended {}: {} ({})",
                s(&x["key"]),
                at(&x["intended_at"]),
                s(&x["intent"]),
                s(&x["why_unknown"])
            );
        }
    }
    let run = &v["last_run"];
    if !run.is_null() {
        let _ = writeln!(
            o,
            "\nLast run: {} (exit {}): {}",
            at(&run["started_at"]),
            s(&run["exit_code"]),
            s(&run["message"])
        );
        let rr = &v["report_rows"];
        let _ = writeln!(o, "  report: {}", or_dash(&rr["file"]));
        if !rr["error"].is_null() {
            let _ = writeln!(o, "  {}", s(&rr["error"]));
        }
        let rows = rr["rows"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() && rr["error"].is_null() {
            let _ = writeln!(
                o,
                "  no report row names this key (nothing changed, rejected or unmatched for it)"
            );
        }
        for r in rows {
            let cells: Vec<String> = r["cells"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| v.as_str().is_some_and(|t| !t.is_empty()))
                .map(|(k, v)| format!("{k}: {}", s(v)))
                .collect();
            let _ = writeln!(o, "  {}: {}", s(&r["sheet"]), cells.join("; "));
        }
    }
    o
}

fn or_dash(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        x => x.to_string(),
    }
}
