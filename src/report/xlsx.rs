//! The run report as an .xlsx workbook: Summary, Changes, Rejected rows, Unmatched keys (and
//! Differences, for audits).
//!
//! Written to a temporary file beside the target and renamed, so a crash never leaves a
//! half-written report under its final name. Text longer than Excel's cell limit is cut with a
//! marker, and when the full workbook still cannot be written a minimal one (the summary) is,
//! so every run keeps a report.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::text::Text;
use super::{BatchEditAsked, Difference, OldFrom, RunReport, Value};

/// `state_dir/reports/<job>/<UTC timestamp>.xlsx`
pub fn report_path(state_dir: &Path, report: &RunReport) -> PathBuf {
    let stamp = report.started_at.format("%Y%m%dT%H%M%S%.3fZ");
    state_dir
        .join("reports")
        .join(sanitize(&report.job))
        .join(format!("{stamp}.xlsx"))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Deletes a job's reports last modified before `before`; returns how many.
pub fn prune(state_dir: &Path, job: &str, before: std::time::SystemTime) -> usize {
    let dir = state_dir.join("reports").join(sanitize(job));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < before);
        if old
            && path.extension().is_some_and(|x| x == "xlsx")
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

pub fn write(path: &Path, report: &RunReport) -> Result<(), String> {
    write_with(path, report, build)
}

/// Writes the workbook `full` builds, or, when that fails, the minimal one that says why.
fn write_with(
    path: &Path,
    report: &RunReport,
    full: impl Fn(&RunReport) -> Result<Workbook, XlsxError>,
) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the report folder {}: {e}", dir.display()))?;
    let tmp = path.with_extension("xlsx.tmp");
    if let Err(e) = full(report).and_then(|mut wb| wb.save(&tmp)) {
        let why = format!("the full report could not be written ({e}); this is its summary");
        tracing::warn!(job = %report.job, error = %e, "Writing a minimal report instead");
        minimal(report, &why)
            .and_then(|mut wb| wb.save(&tmp))
            .map_err(|e2| {
                format!(
                    "cannot write the report {}: {e}; the minimal report failed too: {e2}",
                    tmp.display()
                )
            })?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot move the report into {}: {e}", path.display()))
}

/// Excel refuses a cell holding more than 32,767 characters.
const MAX_CELL_CHARS: usize = 32_767;
const TRUNCATED: &str = "… (truncated)";

/// `s` cut to fit one cell, with a marker saying it was cut.
fn fit(s: &str) -> Cow<'_, str> {
    // Cheap test first: a string of at most this many bytes has at most this many chars.
    if s.len() <= MAX_CELL_CHARS || s.chars().count() <= MAX_CELL_CHARS {
        return Cow::Borrowed(s);
    }
    let keep = MAX_CELL_CHARS - TRUNCATED.chars().count();
    let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    Cow::Owned(format!("{}{TRUNCATED}", &s[..end]))
}

/// A text cell, cut to Excel's limit.
fn text(ws: &mut Worksheet, row: u32, col: u16, s: &str) -> Result<(), XlsxError> {
    ws.write_string(row, col, fit(s).as_ref())?;
    Ok(())
}

/// A Summary value: text, or a number shown with a number format.
enum Item {
    Text(String),
    Count(u64),
    Int(i64),
}

/// The formats numbers are written with: a cell holds the number, the format how Excel shows
/// it (separators per the reader's locale).
struct Formats {
    bold: Format,
    id: Format,
    count: Format,
    money: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            bold: Format::new().set_bold(),
            id: Format::new().set_num_format("0"),
            count: Format::new().set_num_format("#,##0"),
            money: Format::new().set_num_format("#,##0.00"),
        }
    }
}

/// An id or count as a number cell. Exact: below 2^53 every integer is a double.
fn id(ws: &mut Worksheet, row: u32, col: u16, n: u64, f: &Formats) -> Result<(), XlsxError> {
    ws.write_number_with_format(row, col, n as f64, &f.id)?;
    Ok(())
}

/// A quantity or money as a number cell with its format. Money is `Decimal` everywhere else;
/// only here, at the cell, does it become the double Excel stores: a double keeps 15
/// significant digits, so any amount below 10^13 with two decimals reads back as the same
/// cents.
fn value(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    v: Option<Value>,
    f: &Formats,
) -> Result<(), XlsxError> {
    use rust_decimal::prelude::ToPrimitive;
    match v {
        Some(Value::Qty(q)) => {
            ws.write_number_with_format(row, col, q as f64, &f.count)?;
        }
        Some(Value::Money(m)) => match m.round_dp(2).to_f64() {
            Some(x) => {
                ws.write_number_with_format(row, col, x, &f.money)?;
            }
            None => text(ws, row, col, &format!("{m:.2}"))?,
        },
        None => {}
    }
    Ok(())
}

/// A time in the report's zone, to the second, with the zone named.
fn local_time(r: &RunReport, at: chrono::DateTime<chrono::Utc>) -> String {
    let t = r.lang.text();
    format!(
        "{} ({})",
        at.with_timezone(&r.timezone).format(t.time_format),
        r.timezone.name()
    )
}

fn yes_no(t: &Text, b: bool) -> String {
    if b { t.yes } else { t.no }.into()
}

fn kind_name(t: &Text, kind: &str) -> String {
    match kind {
        "stock" => t.kind_stock,
        "price" => t.kind_price,
        "audit" => t.kind_audit,
        "batch_edit" => t.kind_batch_edit,
        other => other,
    }
    .to_string()
}

/// Label → value rows, written as a two-column sheet from `row` on; returns the next row.
fn label_rows(
    ws: &mut Worksheet,
    mut row: u32,
    rows: &[(String, Item)],
    f: &Formats,
) -> Result<u32, XlsxError> {
    for (k, v) in rows {
        text(ws, row, 0, k)?;
        match v {
            Item::Text(s) => text(ws, row, 1, s)?,
            Item::Count(n) => {
                ws.write_number_with_format(row, 1, *n as f64, &f.count)?;
            }
            Item::Int(n) => {
                ws.write_number_with_format(row, 1, *n as f64, &f.id)?;
            }
        }
        row += 1;
    }
    Ok(row)
}

/// The Summary sheet alone: what a run record needs when the full report cannot be written.
fn minimal(r: &RunReport, why: &str) -> Result<Workbook, XlsxError> {
    let t = r.lang.text();
    let f = Formats::new();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet().set_name(t.sheet_summary)?;
    let rows: Vec<(String, Item)> = vec![
        (t.job.into(), Item::Text(r.job.clone())),
        (t.store.into(), Item::Text(r.store.clone())),
        (t.started.into(), Item::Text(local_time(r, r.started_at))),
        (t.finished.into(), Item::Text(local_time(r, r.finished_at))),
        (t.result.into(), Item::Text(r.result_text().into_owned())),
        (t.exit_code.into(), Item::Int(i64::from(r.exit_code))),
        (t.rejected_rows.into(), Item::Count(r.rejected.len() as u64)),
        (
            t.unmatched_keys.into(),
            Item::Count(r.unmatched.len() as u64),
        ),
        (t.report.into(), Item::Text(why.to_string())),
    ];
    label_rows(ws, 0, &rows, &f)?;
    Ok(wb)
}

/// Rows per sheet: Excel's 1,048,576 minus the header. Longer lists continue on "Name 2", …
const ROWS_PER_SHEET: usize = 1_048_575;

/// One list as one or more sheets, written in constant memory (rows stream to a temp file), so
/// a run with millions of changes neither runs out of memory nor past Excel's row limit.
fn item_sheets<T>(
    wb: &mut Workbook,
    name: &str,
    rows_per_sheet: usize,
    cols: &[(&str, f64)],
    items: &[T],
    bold: &Format,
    write: impl Fn(&mut Worksheet, u32, &T) -> Result<(), XlsxError>,
) -> Result<(), XlsxError> {
    let chunks: Vec<&[T]> = if items.is_empty() {
        vec![&[]]
    } else {
        items.chunks(rows_per_sheet.max(1)).collect()
    };
    for (i, chunk) in chunks.into_iter().enumerate() {
        let ws = wb.add_worksheet_with_constant_memory()?;
        if i == 0 {
            ws.set_name(name)?;
        } else {
            ws.set_name(format!("{name} {}", i + 1))?;
        }
        header(ws, cols, bold)?;
        for (j, item) in chunk.iter().enumerate() {
            write(ws, j as u32 + 1, item)?;
        }
    }
    Ok(())
}

fn header(ws: &mut Worksheet, cols: &[(&str, f64)], bold: &Format) -> Result<(), XlsxError> {
    for (i, (name, width)) in cols.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *name, bold)?;
        ws.set_column_width(i as u16, *width)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// The product name and variation of a SKU, as far as the index knows them.
fn names(r: &RunReport, sku_id: u64) -> (&str, &str) {
    r.names.get(&sku_id).map_or(("", ""), |n| {
        (
            n.product.as_deref().unwrap_or(""),
            n.variation.as_deref().unwrap_or(""),
        )
    })
}

/// What a batch edit asked, as label → text rows: the field, the operation and value, which
/// products (the ids the request carried, or that it is by filter), the request itself.
fn edit_rows(t: &Text, asked: &BatchEditAsked) -> Vec<(String, Item)> {
    let b = &asked.body;
    let s = |k: &str| match b.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let attribute = match s("attribute").as_str() {
        "price_sale" => t.price_sale.to_string(),
        "price_discount" => t.price_discount.to_string(),
        "all_prices" => t.edit_all_prices.to_string(),
        "active" => t.edit_active.to_string(),
        other => other.to_string(),
    };
    let operation = match s("operation_type").as_str() {
        "increment" => t.edit_increment.to_string(),
        "decrement" => t.edit_decrement.to_string(),
        other => other.to_string(),
    };
    let value_type = match s("value_type").as_str() {
        "percent" => t.edit_percent.to_string(),
        "fixed" => t.edit_fixed.to_string(),
        other => other.to_string(),
    };
    let mut rows: Vec<(String, Item)> = vec![
        (
            t.edit_occurrence.into(),
            Item::Text(asked.occurrence.clone()),
        ),
        (t.edit_attribute.into(), Item::Text(attribute)),
    ];
    if !operation.is_empty() {
        rows.push((t.edit_operation.into(), Item::Text(operation)));
    }
    rows.push((t.edit_value.into(), Item::Text(s("value"))));
    if !value_type.is_empty() {
        rows.push((t.edit_value_type.into(), Item::Text(value_type)));
    }
    // Which products: explicit only when the request includes products by id and nothing else.
    const LISTS: [&str; 4] = [
        "products_ids",
        "brands_ids",
        "collections_ids",
        "categories_ids",
    ];
    let restrictions = b.get("restrictions");
    let mut covered = Vec::new();
    let mut by_ids_only = true;
    let mut includes_products = false;
    for (side, side_word) in [("include", t.edit_include), ("exclude", t.edit_exclude)] {
        let Some(lists) = restrictions.and_then(|r| r.get(side)) else {
            continue;
        };
        for (list, word) in LISTS.iter().zip(t.edit_lists) {
            let Some(ids) = lists.get(*list).and_then(serde_json::Value::as_array) else {
                continue;
            };
            let ids: Vec<String> = ids.iter().map(|v| v.to_string()).collect();
            covered.push(format!("{side_word} {word}: {}", ids.join(", ")));
            if side == "include" && *list == "products_ids" {
                includes_products = true;
            } else {
                by_ids_only = false;
            }
        }
    }
    if covered.is_empty() {
        covered.push(t.edit_all_products.to_string());
    } else if !(by_ids_only && includes_products) {
        covered.push(t.edit_by_filter.to_string());
    }
    for c in covered {
        rows.push((t.edit_products.into(), Item::Text(c)));
    }
    rows.push((t.edit_request.into(), Item::Text(b.to_string())));
    rows
}

fn build(r: &RunReport) -> Result<Workbook, XlsxError> {
    let t = r.lang.text();
    let f = Formats::new();
    let mut wb = Workbook::new();
    let bold = &f.bold;

    let ws = wb.add_worksheet().set_name(t.sheet_summary)?;
    ws.set_column_width(0, 32)?;
    ws.set_column_width(1, 70)?;
    let mut rows: Vec<(String, Item)> = vec![
        (t.job.into(), Item::Text(r.job.clone())),
        (t.store.into(), Item::Text(r.store.clone())),
        (t.kind.into(), Item::Text(kind_name(t, &r.kind))),
        (t.started.into(), Item::Text(local_time(r, r.started_at))),
        (t.finished.into(), Item::Text(local_time(r, r.finished_at))),
        (t.result.into(), Item::Text(r.result_text().into_owned())),
        (t.exit_code.into(), Item::Int(i64::from(r.exit_code))),
        (t.dry_run.into(), Item::Text(yes_no(t, r.dry_run))),
        (t.full_push.into(), Item::Text(yes_no(t, r.full))),
        (
            t.source_file.into(),
            Item::Text(
                r.source_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ),
        (
            t.source_hash.into(),
            Item::Text(r.source_hash.clone().unwrap_or_default()),
        ),
        (t.rows_read.into(), Item::Count(r.rows_read)),
        (t.valid_rows.into(), Item::Count(r.rows_valid)),
        (t.matched_skus.into(), Item::Count(r.matched_skus)),
        (t.changed_skus.into(), Item::Count(r.changed_skus())),
        (t.products_written.into(), Item::Count(r.products_written)),
        (t.products_failed.into(), Item::Count(r.products_failed)),
        (t.unknown_outcomes.into(), Item::Count(r.unknown_outcomes())),
        (t.rejected_rows.into(), Item::Count(r.rejected.len() as u64)),
        (
            t.unmatched_keys.into(),
            Item::Count(r.unmatched.len() as u64),
        ),
        (t.requests_sent.into(), Item::Count(r.total_requests())),
        (t.answers_429.into(), Item::Count(r.rate_limited)),
    ];
    for (route, n) in &r.requests {
        rows.push((format!("{}: {route}", t.requests_of), Item::Count(*n)));
    }
    if r.kind == "audit" {
        let skus: std::collections::HashSet<u64> = r.differences.iter().map(|d| d.sku_id).collect();
        rows.push((
            t.differences.into(),
            Item::Count(r.differences.len() as u64),
        ));
        rows.push((t.skus_that_differ.into(), Item::Count(skus.len() as u64)));
        rows.push((
            t.sync_would_send.into(),
            Item::Count(r.plan.iter().map(|(_, n)| n).sum::<u64>()),
        ));
        rows.push((
            t.sync_would_take.into(),
            Item::Count(r.plan_eta_secs.max(0.0).round() as u64),
        ));
    }
    // An audit's plan is what a sync would send; nothing was sent.
    let planned = if r.kind == "audit" {
        t.sync_would_send_of
    } else {
        t.planned_of
    };
    for (route, n) in &r.plan {
        rows.push((format!("{planned}: {route}"), Item::Count(*n)));
    }
    if let Some(asked) = &r.batch_edit {
        rows.extend(
            edit_rows(t, asked)
                .into_iter()
                .filter(|(k, _)| k != t.edit_request && k != t.edit_occurrence),
        );
    }
    ws.write_string_with_format(0, 0, t.field, bold)?;
    ws.write_string_with_format(0, 1, t.value, bold)?;
    label_rows(ws, 1, &rows, &f)?;

    // A batch edit has no rows of a file: what it asked is its own sheet.
    if let Some(asked) = &r.batch_edit {
        let ws = wb.add_worksheet().set_name(t.sheet_batch_edit)?;
        ws.set_column_width(0, 28)?;
        ws.set_column_width(1, 90)?;
        ws.write_string_with_format(0, 0, t.field, bold)?;
        ws.write_string_with_format(0, 1, t.value, bold)?;
        label_rows(ws, 1, &edit_rows(t, asked), &f)?;
        return Ok(wb);
    }

    if r.kind == "audit" {
        differences_sheet(&mut wb, r, &f)?;
    }

    item_sheets(
        &mut wb,
        t.sheet_changes,
        ROWS_PER_SHEET,
        &[
            (t.col_key, 20.0),
            (t.col_product, 36.0),
            (t.col_variation, 18.0),
            (t.col_sku_id, 12.0),
            (t.col_product_id, 12.0),
            (t.col_field, 24.0),
            (t.col_cell_text, 14.0),
            (t.col_old, 12.0),
            (t.col_old_from, 24.0),
            (t.col_new, 12.0),
            (t.col_outcome, 60.0),
        ],
        &r.changes,
        bold,
        |ws, row, c| {
            let (product, variation) = names(r, c.sku_id);
            text(ws, row, 0, &c.key)?;
            text(ws, row, 1, product)?;
            text(ws, row, 2, variation)?;
            id(ws, row, 3, c.sku_id, &f)?;
            id(ws, row, 4, c.product_id, &f)?;
            text(ws, row, 5, &c.field.label(r.lang))?;
            if let Some(cell) = &c.cell {
                text(ws, row, 6, cell)?;
            }
            value(ws, row, 7, c.old, &f)?;
            let from = match (c.old, c.old_from) {
                (None, _) => t.old_unknown,
                (Some(_), OldFrom::Pushed) => t.old_pushed,
                (Some(_), OldFrom::Store) => t.old_store,
            };
            text(ws, row, 8, from)?;
            value(ws, row, 9, Some(c.new), &f)?;
            text(ws, row, 10, &c.outcome.text(r.lang))?;
            Ok(())
        },
    )?;
    item_sheets(
        &mut wb,
        t.sheet_rejected,
        ROWS_PER_SHEET,
        &[
            (t.col_file, 40.0),
            (t.col_row, 8.0),
            (t.col_column, 16.0),
            (t.col_value, 16.0),
            (t.col_reason, 60.0),
        ],
        &r.rejected,
        bold,
        |ws, row, x| {
            text(ws, row, 0, &x.file)?;
            id(ws, row, 1, x.row, &f)?;
            text(ws, row, 2, &x.column)?;
            text(ws, row, 3, &x.value)?;
            text(ws, row, 4, x.reason.text(r.lang))?;
            Ok(())
        },
    )?;
    item_sheets(
        &mut wb,
        t.sheet_unmatched,
        ROWS_PER_SHEET,
        &[(t.col_key, 24.0), (t.col_row, 8.0), (t.col_reason, 70.0)],
        &r.unmatched,
        bold,
        |ws, row, u| {
            text(ws, row, 0, &u.key)?;
            id(ws, row, 1, u.row, &f)?;
            text(ws, row, 2, u.reason.text(r.lang))?;
            Ok(())
        },
    )?;
    Ok(wb)
}

/// The Differences sheet of an audit: key, names, SKU id, field, the store's value, the ERP's.
fn differences_sheet(wb: &mut Workbook, r: &RunReport, f: &Formats) -> Result<(), XlsxError> {
    let t = r.lang.text();
    item_sheets(
        wb,
        t.sheet_differences,
        ROWS_PER_SHEET,
        &[
            (t.col_key, 20.0),
            (t.col_product, 36.0),
            (t.col_variation, 18.0),
            (t.col_sku_id, 12.0),
            (t.col_field, 24.0),
            (t.col_store, 14.0),
            (t.col_erp, 14.0),
        ],
        &r.differences,
        &f.bold,
        |ws, row, d: &Difference| {
            let (product, variation) = names(r, d.sku_id);
            text(ws, row, 0, &d.key)?;
            text(ws, row, 1, product)?;
            text(ws, row, 2, variation)?;
            id(ws, row, 3, d.sku_id, f)?;
            text(ws, row, 4, &d.field.label(r.lang))?;
            match d.store {
                Some(v) => value(ws, row, 5, Some(v), f)?,
                None => text(ws, row, 5, t.not_in_export)?,
            }
            value(ws, row, 6, Some(d.erp), f)?;
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Reader, Xlsx, open_workbook};

    fn cell(
        book: &mut Xlsx<std::io::BufReader<std::fs::File>>,
        sheet: &str,
        at: (u32, u32),
    ) -> String {
        let range = book.worksheet_range(sheet).unwrap();
        range
            .get_value(at)
            .map(|d| d.to_string())
            .unwrap_or_default()
    }

    fn huge_report() -> RunReport {
        let mut r = RunReport::new("estoque", "loja", "stock", false, false);
        r.lang = super::super::Lang::En;
        r.exit_code = 3;
        r.message = format!("HTTP 500: {}", "é".repeat(5 * 1024 * 1024));
        r.rejected.push(super::super::RejectedRow {
            file: "erp/e.csv".into(),
            row: 7,
            column: "SALDO".into(),
            value: "x".repeat(40_000),
            reason: crate::report::Reason::new("r".repeat(100 * 1024), "r".repeat(100 * 1024)),
        });
        r
    }

    #[test]
    fn cells_longer_than_excels_limit_are_cut_and_the_report_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xlsx");
        let r = huge_report();
        write(&path, &r).expect("a report is written");
        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        let result = cell(&mut book, "Summary", (6, 1));
        assert!(result.starts_with("HTTP 500: éé"), "{}", &result[..40]);
        assert!(result.ends_with(TRUNCATED));
        assert_eq!(result.chars().count(), MAX_CELL_CHARS);
        let reason = cell(&mut book, "Rejected rows", (1, 4));
        assert!(reason.starts_with("rrr") && reason.ends_with(TRUNCATED));
        assert_eq!(cell(&mut book, "Rejected rows", (1, 1)), "7");
        assert_eq!(fit("short"), "short");
    }

    #[test]
    fn a_workbook_that_cannot_be_built_leaves_a_minimal_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xlsx");
        let r = huge_report();
        write_with(&path, &r, |_| Err(XlsxError::MaxStringLengthExceeded)).unwrap();
        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(book.sheet_names(), ["Summary"]);
        assert_eq!(cell(&mut book, "Summary", (5, 1)), "3");
        assert_eq!(
            cell(&mut book, "Summary", (6, 1)),
            "1",
            "rejected rows counted"
        );
        assert!(cell(&mut book, "Summary", (8, 1)).contains("could not be written"));
        assert!(!dir.path().join("r.xlsx.tmp").exists());
    }

    #[test]
    fn long_lists_continue_on_further_sheets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xlsx");
        let mut wb = Workbook::new();
        let bold = Format::new().set_bold();
        let items: Vec<u32> = (0..5).collect();
        item_sheets(
            &mut wb,
            "Changes",
            2,
            &[("n", 8.0)],
            &items,
            &bold,
            |ws, row, n| {
                ws.write_number(row, 0, *n as f64)?;
                Ok(())
            },
        )
        .unwrap();
        item_sheets(
            &mut wb,
            "Unmatched keys",
            2,
            &[("n", 8.0)],
            &[] as &[u32],
            &bold,
            |_, _, _| Ok(()),
        )
        .unwrap();
        wb.save(&path).unwrap();
        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(
            book.sheet_names(),
            ["Changes", "Changes 2", "Changes 3", "Unmatched keys"]
        );
        let heights: Vec<usize> = ["Changes", "Changes 2", "Changes 3"]
            .iter()
            .map(|s| book.worksheet_range(s).unwrap().height())
            .collect();
        assert_eq!(heights, [3, 3, 2], "a header plus at most two rows each");
    }
}
