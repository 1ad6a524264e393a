//! The run report as an .xlsx workbook: Summary, Changes, Rejected rows, Unmatched keys (SPEC §8).
//!
//! Written to a temporary file beside the target and renamed, so a crash never leaves a
//! half-written report under its final name.

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::{RunReport, Value};

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
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the report folder {}: {e}", dir.display()))?;
    let tmp = path.with_extension("xlsx.tmp");
    build(report)
        .and_then(|mut wb| wb.save(&tmp))
        .map_err(|e| format!("cannot write the report {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot move the report into {}: {e}", path.display()))
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
        ws.write_string(row, 0, k)?;
        ws.write_string(row, 1, v)?;
        row += 1;
    }
    for (route, n) in &r.requests {
        ws.write_string(row, 0, format!("Requests: {route}"))?;
        ws.write_number(row, 1, *n as f64)?;
        row += 1;
    }
    for (route, n) in &r.plan {
        ws.write_string(row, 0, format!("Planned: {route}"))?;
        ws.write_number(row, 1, *n as f64)?;
        row += 1;
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
            ws.write_string(row, 0, c.key.as_ref())?;
            ws.write_number(row, 1, c.sku_id as f64)?;
            ws.write_number(row, 2, c.product_id as f64)?;
            ws.write_string(row, 3, c.field.to_string())?;
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
            ws.write_string(row, 6, c.outcome.to_string())?;
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
            ws.write_string(row, 0, &x.file)?;
            ws.write_number(row, 1, x.row as f64)?;
            ws.write_string(row, 2, &x.column)?;
            ws.write_string(row, 3, &x.value)?;
            ws.write_string(row, 4, &x.reason)?;
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
            ws.write_string(row, 0, &u.key)?;
            ws.write_number(row, 1, u.row as f64)?;
            ws.write_string(row, 2, u.reason.as_ref())?;
            Ok(())
        },
    )?;
    Ok(wb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Reader, Xlsx, open_workbook};

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
