//! Writing BIFF8 `.xls` files: the price imports Yampi downloads (its import API documents
//! `.xls` only, and a real BIFF8 file is the one format every reader it may use accepts).
//!
//! The bytes come from the `excelerate` crate, pinned to one exact version in Cargo.toml. It is
//! young (a single maintainer, seven releases in six weeks), so it sits behind [`XlsSink`]: an
//! in-house writer can replace it without touching a caller. What it gets wrong is checked
//! here, not trusted:
//! - it clamps rows past BIFF8's 65,536 onto the last row, silently: more than
//!   [`MAX_DATA_ROWS`] rows are refused before anything is written (callers split with
//!   [`chunks`]);
//! - every file is read back with calamine and compared cell by cell before it appears at its
//!   path (written to a temporary file beside it, renamed once it matches), so a truncated or
//!   garbled file is an error and never left where it could be served.
//!
//! Numbers are `Decimal` up to the cell, where BIFF8 only has an f64: a value is converted
//! through its decimal text (the nearest f64) and refused if it would not read back as the same
//! decimal (more than 15 significant digits).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;

/// One cell of a written sheet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XlsCell {
    Text(String),
    Number(Decimal),
    Empty,
}

/// BIFF8 holds 65,536 rows, the header included.
pub const MAX_DATA_ROWS: usize = 65_535;
/// BIFF8 holds 256 columns (A..IV).
pub const MAX_COLUMNS: usize = 256;
/// The most characters a BIFF8 cell's text may have.
pub const MAX_TEXT_CHARS: usize = 32_767;

#[derive(Debug, thiserror::Error)]
pub enum XlsError {
    #[error(
        "refusing to write {path}: {rows} data rows are more than the {MAX_DATA_ROWS} a .xls sheet holds under its header (split them into several files); nothing was written"
    )]
    TooManyRows { path: PathBuf, rows: usize },
    #[error(
        "refusing to write {path}: {columns} columns are more than the {MAX_COLUMNS} a .xls sheet holds; nothing was written"
    )]
    TooManyColumns { path: PathBuf, columns: usize },
    #[error("refusing to write {path}: the header has no columns; nothing was written")]
    NoColumns { path: PathBuf },
    #[error(
        "refusing to write {path}: row {row} has {len} cells but the header has {header_len}; nothing was written"
    )]
    RaggedRow {
        path: PathBuf,
        /// The row's number in the file (the header is row 1).
        row: usize,
        len: usize,
        header_len: usize,
    },
    #[error(
        "refusing to write {path}: row {row}, column \"{column}\": {value} cannot be held exactly by a .xls number (more than 15 significant digits); nothing was written"
    )]
    InexactNumber {
        path: PathBuf,
        row: usize,
        column: String,
        value: Decimal,
    },
    #[error(
        "refusing to write {path}: row {row}, column \"{column}\": the text has {chars} characters, more than the {MAX_TEXT_CHARS} a .xls cell holds; nothing was written"
    )]
    TextTooLong {
        path: PathBuf,
        row: usize,
        column: String,
        chars: usize,
    },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("wrote {path} but it does not read back as written ({message}); the file was not kept")]
    Verify { path: PathBuf, message: String },
}

/// Something that turns one sheet into a `.xls` file at `path`.
pub trait XlsSink {
    fn write(
        &self,
        path: &Path,
        sheet: &str,
        header: &[String],
        rows: &[Vec<XlsCell>],
    ) -> Result<(), XlsError>;
}

/// The `excelerate` writer.
pub struct ExcelerateSink;

impl XlsSink for ExcelerateSink {
    fn write(
        &self,
        path: &Path,
        sheet: &str,
        header: &[String],
        rows: &[Vec<XlsCell>],
    ) -> Result<(), XlsError> {
        use excelerate::model::{CellValue, Spreadsheet, Worksheet};

        // Checked here too: excelerate would clamp extra rows instead of failing.
        check(path, header, rows)?;
        let failed = |e: excelerate::Error| XlsError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut book = Spreadsheet::empty();
        let mut ws = Worksheet::new(sheet).map_err(failed)?;
        let numbered = std::iter::once(
            header.iter().map(|h| CellValue::from(h.as_str())).collect(),
        )
        .chain(rows.iter().map(|row| {
            row.iter()
                .map(|c| match c {
                    XlsCell::Text(t) => CellValue::from(t.as_str()),
                    // `check` has made sure the f64 reads back as this decimal.
                    XlsCell::Number(d) => CellValue::Number(to_f64(*d).unwrap_or(f64::NAN)),
                    XlsCell::Empty => CellValue::Empty,
                })
                .collect::<Vec<_>>()
        }));
        for (r, cells) in (1u32..).zip(numbered) {
            for (c, value) in (1u32..).zip(cells) {
                if !matches!(value, CellValue::Empty) {
                    ws.set_at(r, c, value).map_err(failed)?;
                }
            }
        }
        book.add_sheet(ws).map_err(failed)?;
        excelerate::writer::write_xls(&book, path).map_err(failed)
    }
}

/// Writes one file; refuses (error, nothing written) more than MAX_DATA_ROWS rows or a row whose
/// length differs from the header's.
pub fn write_xls(
    path: &Path,
    sheet: &str,
    header: &[String],
    rows: &[Vec<XlsCell>],
) -> Result<(), XlsError> {
    write_xls_with(&ExcelerateSink, path, sheet, header, rows)
}

/// [`write_xls`] through any sink: checked, written beside `path`, read back and compared, then
/// renamed to `path`. On any error nothing is left at `path`.
pub fn write_xls_with(
    sink: &dyn XlsSink,
    path: &Path,
    sheet: &str,
    header: &[String],
    rows: &[Vec<XlsCell>],
) -> Result<(), XlsError> {
    check(path, header, rows)?;
    let io_error = |e: std::io::Error| XlsError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".writing-")
        .suffix(".xls")
        .tempfile_in(dir)
        .map_err(io_error)?;
    sink.write(temp.path(), sheet, header, rows)?;
    verify(temp.path(), sheet, header, rows).map_err(|message| XlsError::Verify {
        path: path.to_path_buf(),
        message,
    })?;
    temp.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

/// Splits rows into chunks of at most `max` rows (≥ 1) — the caller writes one file per chunk.
pub fn chunks(total: usize, max: usize) -> Vec<Range<usize>> {
    let max = max.max(1);
    (0..total)
        .step_by(max)
        .map(|start| start..(start + max).min(total))
        .collect()
}

/// The nearest f64, but only if it reads back (shortest text) as the same decimal.
fn to_f64(d: Decimal) -> Option<f64> {
    let f: f64 = d.to_string().parse().ok()?;
    let back = Decimal::from_str(&f.to_string()).ok()?;
    (f.is_finite() && back == d.normalize()).then_some(f)
}

fn check(path: &Path, header: &[String], rows: &[Vec<XlsCell>]) -> Result<(), XlsError> {
    let path_buf = || path.to_path_buf();
    if rows.len() > MAX_DATA_ROWS {
        return Err(XlsError::TooManyRows {
            path: path_buf(),
            rows: rows.len(),
        });
    }
    if header.is_empty() {
        return Err(XlsError::NoColumns { path: path_buf() });
    }
    if header.len() > MAX_COLUMNS {
        return Err(XlsError::TooManyColumns {
            path: path_buf(),
            columns: header.len(),
        });
    }
    let text_too_long = |row: usize, column: usize, t: &str| {
        let chars = t.chars().count();
        (chars > MAX_TEXT_CHARS).then(|| XlsError::TextTooLong {
            path: path_buf(),
            row,
            column: header[column].clone(),
            chars,
        })
    };
    for (c, h) in header.iter().enumerate() {
        if let Some(e) = text_too_long(1, c, h) {
            return Err(e);
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let file_row = i + 2;
        if row.len() != header.len() {
            return Err(XlsError::RaggedRow {
                path: path_buf(),
                row: file_row,
                len: row.len(),
                header_len: header.len(),
            });
        }
        for (c, cell) in row.iter().enumerate() {
            match cell {
                XlsCell::Text(t) => {
                    if let Some(e) = text_too_long(file_row, c, t) {
                        return Err(e);
                    }
                }
                XlsCell::Number(d) => {
                    if to_f64(*d).is_none() {
                        return Err(XlsError::InexactNumber {
                            path: path_buf(),
                            row: file_row,
                            column: header[c].clone(),
                            value: *d,
                        });
                    }
                }
                XlsCell::Empty => {}
            }
        }
    }
    Ok(())
}

/// Reads the written file with calamine and compares it with what was meant, cell by cell.
fn verify(
    path: &Path,
    sheet: &str,
    header: &[String],
    rows: &[Vec<XlsCell>],
) -> Result<(), String> {
    use calamine::{Data, Reader, Xls};

    let mut wb: Xls<_> = calamine::open_workbook(path).map_err(|e| format!("calamine: {e}"))?;
    let names = wb.sheet_names();
    if names.len() != 1 || names[0] != sheet {
        return Err(format!(
            "its sheets are {names:?}, one sheet \"{sheet}\" expected"
        ));
    }
    let range = wb
        .worksheet_range(sheet)
        .map_err(|e| format!("calamine: {e}"))?;
    // The meant cells, the header as row 0; trailing all-empty rows are not in the file.
    let meant = |r: usize, c: usize| -> Option<Data> {
        let cell = if r == 0 {
            XlsCell::Text(header[c].clone())
        } else {
            rows[r - 1][c].clone()
        };
        match cell {
            XlsCell::Text(t) if t.is_empty() => None,
            XlsCell::Text(t) => Some(Data::String(t)),
            XlsCell::Number(d) => Some(Data::Float(to_f64(d).unwrap_or(f64::NAN))),
            XlsCell::Empty => None,
        }
    };
    let meant_rows = (0..=rows.len())
        .rev()
        .find(|r| (0..header.len()).any(|c| meant(*r, c).is_some()))
        .map_or(0, |r| r + 1);
    let read_rows = range.end().map_or(0, |(r, _)| r as usize + 1);
    if read_rows != meant_rows {
        return Err(format!(
            "it holds {read_rows} rows, {meant_rows} were written (header included)"
        ));
    }
    if let Some((_, c)) = range.end()
        && c as usize >= header.len()
    {
        return Err(format!(
            "it holds {} columns, {} were written",
            c + 1,
            header.len()
        ));
    }
    for r in 0..meant_rows {
        for (c, _) in header.iter().enumerate() {
            let got = match range.get_value((r as u32, c as u32)) {
                None | Some(Data::Empty) => None,
                Some(Data::String(s)) if s.is_empty() => None,
                Some(Data::Int(i)) => Some(Data::Float(*i as f64)),
                Some(d) => Some(d.clone()),
            };
            let want = meant(r, c);
            if got != want {
                return Err(format!(
                    "row {}, column \"{}\" reads {got:?}, {want:?} was written",
                    r + 1,
                    header[c]
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader, Xls};
    use rust_decimal::dec;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn read(path: &Path) -> calamine::Range<Data> {
        let mut wb: Xls<_> = calamine::open_workbook(path).unwrap();
        let name = wb.sheet_names()[0].clone();
        wb.worksheet_range(&name).unwrap()
    }

    #[test]
    fn accents_text_ids_numbers_and_empty_cells_keep_their_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.xls");
        let h = header(&["id", "sku", "preço_venda", "Preço Promocional"]);
        let rows = vec![
            vec![
                XlsCell::Text("000123".into()),
                XlsCell::Text("AÇÃO-é".into()),
                XlsCell::Number(dec!(12.34)),
                XlsCell::Empty,
            ],
            vec![
                XlsCell::Text("7".into()),
                XlsCell::Text("B".into()),
                XlsCell::Number(dec!(5)),
                XlsCell::Number(dec!(1299.90)),
            ],
        ];
        write_xls(&path, "skus", &h, &rows).unwrap();
        let range = read(&path);
        assert_eq!(range.height(), 3);
        assert_eq!(
            range.get_value((0, 2)),
            Some(&Data::String("preço_venda".into()))
        );
        assert_eq!(
            range.get_value((0, 3)),
            Some(&Data::String("Preço Promocional".into()))
        );
        assert_eq!(
            range.get_value((1, 0)),
            Some(&Data::String("000123".into())),
            "a text id keeps its zeros"
        );
        assert_eq!(
            range.get_value((1, 1)),
            Some(&Data::String("AÇÃO-é".into()))
        );
        assert_eq!(range.get_value((1, 2)), Some(&Data::Float(12.34)));
        assert!(
            matches!(range.get_value((1, 3)), None | Some(Data::Empty)),
            "empty stays empty: {:?}",
            range.get_value((1, 3))
        );
        assert!(
            matches!(
                range.get_value((2, 2)),
                Some(Data::Float(f)) if *f == 5.0
            ) || range.get_value((2, 2)) == Some(&Data::Int(5))
        );
        assert_eq!(range.get_value((2, 3)), Some(&Data::Float(1299.9)));
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn two_decimal_prices_round_trip_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.xls");
        let values = [
            dec!(0.1),
            dec!(0.01),
            dec!(12.34),
            dec!(1299.90),
            dec!(999999999.99),
            dec!(0.30),
            dec!(-4.05),
        ];
        let rows: Vec<Vec<XlsCell>> = values.iter().map(|v| vec![XlsCell::Number(*v)]).collect();
        write_xls(&path, "p", &header(&["preco_venda"]), &rows).unwrap();
        let range = read(&path);
        for (i, v) in values.iter().enumerate() {
            let f = match range.get_value((i as u32 + 1, 0)) {
                Some(Data::Float(f)) => *f,
                other => panic!("row {i}: {other:?}"),
            };
            let back = Decimal::from_f64_retain(f).unwrap().round_dp(2);
            assert_eq!(back, *v, "{v} read back as {f}");
            assert_eq!(Decimal::from_str(&f.to_string()).unwrap(), v.normalize());
        }
    }

    #[test]
    fn a_number_f64_cannot_hold_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.xls");
        let rows = vec![vec![XlsCell::Number(dec!(1234567890123456.78))]];
        let e = write_xls(&path, "p", &header(&["preco_venda"]), &rows).unwrap_err();
        assert!(matches!(e, XlsError::InexactNumber { row: 2, .. }), "{e}");
        assert!(e.to_string().contains("preco_venda"), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn the_row_limit_is_65535_data_rows() {
        let dir = tempfile::tempdir().unwrap();
        let h = header(&["id"]);
        let rows: Vec<Vec<XlsCell>> = (0..MAX_DATA_ROWS + 1)
            .map(|i| vec![XlsCell::Number(Decimal::from(i))])
            .collect();
        let ok = dir.path().join("ok.xls");
        write_xls(&ok, "s", &h, &rows[..MAX_DATA_ROWS]).unwrap();
        let range = read(&ok);
        assert_eq!(range.height(), MAX_DATA_ROWS + 1);
        assert_eq!(
            range.get_value((MAX_DATA_ROWS as u32, 0)),
            Some(&Data::Float((MAX_DATA_ROWS - 1) as f64))
        );
        let over = dir.path().join("over.xls");
        let e = write_xls(&over, "s", &h, &rows).unwrap_err();
        assert!(
            matches!(e, XlsError::TooManyRows { rows: 65_536, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("over.xls"), "{e}");
        assert!(!over.exists(), "nothing written");
    }

    #[test]
    fn a_row_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xls");
        let rows = vec![
            vec![XlsCell::Empty, XlsCell::Empty],
            vec![XlsCell::Text("x".into())],
        ];
        let e = write_xls(&path, "s", &header(&["a", "b"]), &rows).unwrap_err();
        assert!(
            matches!(
                e,
                XlsError::RaggedRow {
                    row: 3,
                    len: 1,
                    header_len: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!path.exists());
    }

    /// A writer that drops the last row, as excelerate does past the limit.
    struct Truncating;
    impl XlsSink for Truncating {
        fn write(
            &self,
            path: &Path,
            sheet: &str,
            header: &[String],
            rows: &[Vec<XlsCell>],
        ) -> Result<(), XlsError> {
            ExcelerateSink.write(path, sheet, header, &rows[..rows.len() - 1])
        }
    }

    /// A writer that writes the last row's values over the one before, as excelerate does past
    /// the limit.
    struct Clamping;
    impl XlsSink for Clamping {
        fn write(
            &self,
            path: &Path,
            sheet: &str,
            header: &[String],
            rows: &[Vec<XlsCell>],
        ) -> Result<(), XlsError> {
            let mut rows = rows.to_vec();
            let last = rows.pop().unwrap();
            *rows.last_mut().unwrap() = last.clone();
            rows.push(last);
            ExcelerateSink.write(path, sheet, header, &rows)
        }
    }

    #[test]
    fn a_file_that_does_not_read_back_as_written_is_an_error_and_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let h = header(&["id", "preco_venda"]);
        let rows: Vec<Vec<XlsCell>> = (0..3)
            .map(|i| {
                vec![
                    XlsCell::Text(format!("{i}")),
                    XlsCell::Number(Decimal::from(i)),
                ]
            })
            .collect();
        for (name, sink) in [
            ("t.xls", &Truncating as &dyn XlsSink),
            ("c.xls", &Clamping as &dyn XlsSink),
        ] {
            let path = dir.path().join(name);
            let e = write_xls_with(sink, &path, "s", &h, &rows).unwrap_err();
            assert!(matches!(e, XlsError::Verify { .. }), "{e}");
            assert!(e.to_string().contains(name), "{e}");
            assert!(!path.exists(), "{name} kept");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn chunks_cover_every_row_once() {
        assert_eq!(
            chunks(70_000, MAX_DATA_ROWS),
            vec![0..65_535, 65_535..70_000]
        );
        assert_eq!(chunks(65_535, MAX_DATA_ROWS), vec![0..65_535]);
        assert_eq!(chunks(0, MAX_DATA_ROWS), Vec::<Range<usize>>::new());
        assert_eq!(chunks(3, 0), vec![0..1, 1..2, 2..3], "max is at least 1");
    }
}
