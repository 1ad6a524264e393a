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

use super::{Difference, RunReport, Value};

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

/// The Summary sheet alone: what a run record needs when the full report cannot be written.
fn minimal(r: &RunReport, why: &str) -> Result<Workbook, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet().set_name("Summary")?;
    let rows: [(&str, String); 9] = [
        ("Job", r.job.clone()),
        ("Store", r.store.clone()),
        ("Started (UTC)", r.started_at.to_rfc3339()),
        ("Finished (UTC)", r.finished_at.to_rfc3339()),
        ("Result", r.message.clone()),
        ("Exit code", r.exit_code.to_string()),
        ("Rejected rows", r.rejected.len().to_string()),
        ("Unmatched keys", r.unmatched.len().to_string()),
        ("Report", why.to_string()),
    ];
    for (i, (k, v)) in rows.iter().enumerate() {
        text(ws, i as u32, 0, k)?;
        text(ws, i as u32, 1, v)?;
    }
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

fn build(r: &RunReport) -> Result<Workbook, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();

    let ws = wb.add_worksheet().set_name("Summary")?;
    ws.set_column_width(0, 28)?;
    ws.set_column_width(1, 70)?;
    let rows: Vec<(&str, String)> = vec![
        ("Job", r.job.clone()),
        ("Store", r.store.clone()),
        ("Kind", r.kind.clone()),
        ("Started (UTC)", r.started_at.to_rfc3339()),
        ("Finished (UTC)", r.finished_at.to_rfc3339()),
        ("Result", r.message.clone()),
        ("Exit code", r.exit_code.to_string()),
        ("Dry run", if r.dry_run { "yes" } else { "no" }.into()),
        ("Full push", if r.full { "yes" } else { "no" }.into()),
        (
            "Source file",
            r.source_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        (
            "Source hash (blake3)",
            r.source_hash.clone().unwrap_or_default(),
        ),
        ("Rows read", r.rows_read.to_string()),
        ("Valid rows", r.rows_valid.to_string()),
        ("Matched SKUs", r.matched_skus.to_string()),
        ("Changed SKUs", r.changed_skus().to_string()),
        ("Products written", r.products_written.to_string()),
        ("Products failed", r.products_failed.to_string()),
        ("Rejected rows", r.rejected.len().to_string()),
        ("Unmatched keys", r.unmatched.len().to_string()),
        ("Requests sent", r.total_requests().to_string()),
        ("429 answers", r.rate_limited.to_string()),
    ];
    ws.write_string_with_format(0, 0, "Field", &bold)?;
    ws.write_string_with_format(0, 1, "Value", &bold)?;
    let mut row = 1u32;
    for (k, v) in rows {
        text(ws, row, 0, k)?;
        text(ws, row, 1, &v)?;
        row += 1;
    }
    for (route, n) in &r.requests {
        text(ws, row, 0, &format!("Requests: {route}"))?;
        ws.write_number(row, 1, *n as f64)?;
        row += 1;
    }
    if r.kind == "audit" {
        let skus: std::collections::HashSet<u64> = r.differences.iter().map(|d| d.sku_id).collect();
        for (k, v) in [
            ("Differences", r.differences.len().to_string()),
            ("SKUs that differ", skus.len().to_string()),
            (
                "A sync would send (requests)",
                r.plan.iter().map(|(_, n)| n).sum::<u64>().to_string(),
            ),
            (
                "A sync would take (seconds)",
                format!("{:.0}", r.plan_eta_secs),
            ),
        ] {
            text(ws, row, 0, k)?;
            text(ws, row, 1, &v)?;
            row += 1;
        }
    }
    // An audit's plan is what a sync would send; nothing was sent.
    let planned = if r.kind == "audit" {
        "A sync would send"
    } else {
        "Planned"
    };
    for (route, n) in &r.plan {
        text(ws, row, 0, &format!("{planned}: {route}"))?;
        ws.write_number(row, 1, *n as f64)?;
        row += 1;
    }

    if r.kind == "audit" {
        differences_sheet(&mut wb, &r.differences, &bold)?;
    }

    item_sheets(
        &mut wb,
        "Changes",
        ROWS_PER_SHEET,
        &[
            ("key", 20.0),
            ("sku id", 12.0),
            ("product id", 12.0),
            ("field", 22.0),
            ("old", 12.0),
            ("new", 12.0),
            ("outcome", 60.0),
        ],
        &r.changes,
        &bold,
        |ws, row, c| {
            text(ws, row, 0, &c.key)?;
            ws.write_number(row, 1, c.sku_id as f64)?;
            ws.write_number(row, 2, c.product_id as f64)?;
            text(ws, row, 3, &c.field.to_string())?;
            // Quantities as numbers; money as its exact decimal text, never through a binary float.
            for (col, v) in [(4u16, c.old), (5, Some(c.new))] {
                match v {
                    Some(Value::Qty(q)) => {
                        ws.write_number(row, col, q as f64)?;
                    }
                    Some(Value::Money(m)) => {
                        ws.write_string(row, col, format!("{m:.2}"))?;
                    }
                    None => {}
                }
            }
            text(ws, row, 6, &c.outcome.to_string())?;
            Ok(())
        },
    )?;
    item_sheets(
        &mut wb,
        "Rejected rows",
        ROWS_PER_SHEET,
        &[
            ("file", 40.0),
            ("row", 8.0),
            ("column", 16.0),
            ("value", 16.0),
            ("reason", 60.0),
        ],
        &r.rejected,
        &bold,
        |ws, row, x| {
            text(ws, row, 0, &x.file)?;
            ws.write_number(row, 1, x.row as f64)?;
            text(ws, row, 2, &x.column)?;
            text(ws, row, 3, &x.value)?;
            text(ws, row, 4, &x.reason)?;
            Ok(())
        },
    )?;
    item_sheets(
        &mut wb,
        "Unmatched keys",
        ROWS_PER_SHEET,
        &[("key", 24.0), ("row", 8.0), ("reason", 70.0)],
        &r.unmatched,
        &bold,
        |ws, row, u| {
            text(ws, row, 0, &u.key)?;
            ws.write_number(row, 1, u.row as f64)?;
            text(ws, row, 2, &u.reason)?;
            Ok(())
        },
    )?;
    Ok(wb)
}

/// The Differences sheet of an audit: key, SKU id, field, the store's value, the ERP's.
fn differences_sheet(
    wb: &mut Workbook,
    items: &[Difference],
    bold: &Format,
) -> Result<(), XlsxError> {
    item_sheets(
        wb,
        "Differences",
        ROWS_PER_SHEET,
        &[
            ("key", 20.0),
            ("sku id", 12.0),
            ("field", 22.0),
            ("store", 14.0),
            ("erp", 14.0),
        ],
        items,
        bold,
        |ws, row, d| {
            text(ws, row, 0, &d.key)?;
            ws.write_number(row, 1, d.sku_id as f64)?;
            text(ws, row, 2, &d.field.to_string())?;
            for (col, v) in [(3u16, d.store), (4, Some(d.erp))] {
                match v {
                    Some(Value::Qty(q)) => {
                        ws.write_number(row, col, q as f64)?;
                    }
                    // Money as its exact decimal text, never through a binary float.
                    Some(Value::Money(m)) => {
                        ws.write_string(row, col, format!("{m:.2}"))?;
                    }
                    None => {
                        text(ws, row, col, "(not in the export)")?;
                    }
                }
            }
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
        r.exit_code = 3;
        r.message = format!("HTTP 500: {}", "é".repeat(5 * 1024 * 1024));
        r.rejected.push(super::super::RejectedRow {
            file: "erp/e.csv".into(),
            row: 7,
            column: "SALDO".into(),
            value: "x".repeat(40_000),
            reason: "r".repeat(100 * 1024),
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
