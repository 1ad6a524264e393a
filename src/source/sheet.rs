//! Spreadsheet sources through calamine: XLSX streamed cell by cell (every cell's position
//! checked against Excel's grid), XLS and ODS loaded whole (calamine cannot stream those
//! formats) once `bounds` has checked that every sheet fits the caps.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{Data, DataRef, Range, Reader, Xlsx};

use super::{Cell, Format, SourceError, bounds};

pub enum SheetBody {
    /// The sheet is re-streamed from the workbook for the rows.
    Xlsx {
        workbook: Box<Xlsx<BufReader<File>>>,
        sheet: String,
        header_row: u32,
    },
    Loaded {
        range: Range<Data>,
        header_row: u32,
    },
}

/// A calamine error as one sentence: where (`place`: the workbook, or the sheet and the cell
/// last read), what it means, and what to do.
fn sheet_error(path: &Path, format: Format, place: &str, e: impl std::fmt::Display) -> SourceError {
    let raw = e.to_string();
    let what = if raw.contains("missing the expected row") || raw.contains("Expecting alphanumeric")
    {
        format!("a cell's reference (its name, like B12) is malformed ({raw})")
    } else if raw.contains("Parse float") || raw.contains("ParseFloat") {
        format!("a cell marked as a number holds something that is not a number ({raw})")
    } else {
        raw
    };
    let ext = format!("{format:?}").to_lowercase();
    SourceError::Sheet {
        path: path.to_path_buf(),
        format: format!("{format:?}").to_uppercase(),
        message: format!(
            "{place}: {what}; open it in Excel or LibreOffice and save it again as .{ext}, or export it again from the ERP"
        ),
    }
}

/// Where a streamed XLSX reader is: the sheet and the last cell read.
fn place(sheet: &str, last: Option<(u32, u32)>) -> String {
    match last {
        None => format!("sheet \"{sheet}\", before its first cell"),
        Some((r, c)) => format!(
            "sheet \"{sheet}\", after cell {}",
            super::cell_name(u64::from(r), u64::from(c))
        ),
    }
}

fn choose_sheet(
    path: &Path,
    names: &[String],
    wanted: Option<&str>,
) -> Result<String, SourceError> {
    match wanted {
        None => names.first().cloned().ok_or_else(|| SourceError::Empty {
            path: path.to_path_buf(),
        }),
        Some(w) => names
            .iter()
            .find(|n| n.as_str() == w)
            .or_else(|| {
                let nw = super::normalize_header(w);
                names.iter().find(|n| super::normalize_header(n) == nw)
            })
            .cloned()
            .ok_or_else(|| SourceError::NoSheet {
                path: path.to_path_buf(),
                sheet: w.to_string(),
                available: names.join(", "),
            }),
    }
}

fn text_of_ref(d: &DataRef<'_>) -> Option<String> {
    match d {
        DataRef::DateTime(dt) => Some(
            dt.as_datetime()
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_else(|| dt.as_f64().to_string()),
        ),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Some(s.clone()),
        _ => None,
    }
}

fn cell_of_ref<'a>(d: &'a DataRef<'_>, text: &'a Option<String>) -> Cell<'a> {
    match d {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) => text_cell(s),
        DataRef::SharedString(s) => text_cell(s),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Int(i) => Cell::Number(*i as f64),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::Error(e) => Cell::Error(e.to_string()),
        DataRef::DateTime(_) | DataRef::DateTimeIso(_) | DataRef::DurationIso(_) => {
            text.as_deref().map(text_cell).unwrap_or(Cell::Empty)
        }
    }
}

fn cell_of_data<'a>(d: &'a Data, text: &'a Option<String>) -> Cell<'a> {
    match d {
        Data::Empty => Cell::Empty,
        Data::String(s) => text_cell(s),
        Data::Float(f) => Cell::Number(*f),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Bool(b) => Cell::Bool(*b),
        Data::Error(e) => Cell::Error(e.to_string()),
        Data::DateTime(_) | Data::DateTimeIso(_) | Data::DurationIso(_) => {
            text.as_deref().map(text_cell).unwrap_or(Cell::Empty)
        }
    }
}

fn text_of_data(d: &Data) -> Option<String> {
    match d {
        Data::DateTime(dt) => Some(
            dt.as_datetime()
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_else(|| dt.as_f64().to_string()),
        ),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
        _ => None,
    }
}

fn text_cell(s: &str) -> Cell<'_> {
    let t = s.trim();
    if t.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(t)
    }
}

impl SheetBody {
    pub fn open(
        path: &Path,
        format: Format,
        sheet: Option<&str>,
    ) -> Result<(Vec<String>, SheetBody, String), SourceError> {
        if !path.exists() {
            return Err(SourceError::Io {
                path: path.to_path_buf(),
                message: "no such file".into(),
            });
        }
        match format {
            Format::Xlsx => {
                let mut wb: Xlsx<_> = calamine::open_workbook(path)
                    .map_err(|e| sheet_error(path, format, "the workbook", e))?;
                let name = choose_sheet(path, &wb.sheet_names(), sheet)?;
                // The header is the first row with any content.
                let mut headers: Vec<String> = Vec::new();
                let mut header_row: Option<u32> = None;
                {
                    let mut reader = wb
                        .worksheet_cells_reader(&name)
                        .map_err(|e| sheet_error(path, format, &place(&name, None), e))?;
                    let mut last = None;
                    while let Some(cell) = reader
                        .next_cell()
                        .map_err(|e| sheet_error(path, format, &place(&name, last), e))?
                    {
                        let (r, c) = cell.get_position();
                        last = Some((r, c));
                        bounds::check_position(path, &name, r, c)?;
                        let text = text_of_ref(cell.get_value());
                        let value = cell_of_ref(cell.get_value(), &text);
                        if matches!(value, Cell::Empty) {
                            continue;
                        }
                        match header_row {
                            None => header_row = Some(r),
                            Some(h) if h != r => break,
                            _ => {}
                        }
                        let c = c as usize;
                        if headers.len() <= c {
                            headers.resize(c + 1, String::new());
                        }
                        headers[c] = Cell::as_text(&value);
                    }
                }
                let header_row = header_row.ok_or_else(|| SourceError::Empty {
                    path: path.to_path_buf(),
                })?;
                Ok((
                    headers,
                    SheetBody::Xlsx {
                        workbook: Box::new(wb),
                        sheet: name.clone(),
                        header_row,
                    },
                    name,
                ))
            }
            Format::Xls | Format::Ods => {
                // Before calamine expands anything: it loads every sheet as a dense grid.
                if format == Format::Xls {
                    bounds::check_xls(path)?;
                } else {
                    bounds::check_ods(path)?;
                }
                let mut wb = calamine::open_workbook_auto(path)
                    .map_err(|e| sheet_error(path, format, "the workbook", e))?;
                let name = choose_sheet(path, &wb.sheet_names(), sheet)?;
                let range = wb
                    .worksheet_range(&name)
                    .map_err(|e| sheet_error(path, format, &format!("sheet \"{name}\""), e))?;
                let start_row = range.start().map(|s| s.0).unwrap_or(0);
                let start_col = range.start().map(|s| s.1).unwrap_or(0) as usize;
                let mut header_row = None;
                let mut headers = Vec::new();
                for (i, row) in range.rows().enumerate() {
                    let blank = |d: &Data| match d {
                        Data::Empty => true,
                        Data::String(s) => s.trim().is_empty(),
                        _ => false,
                    };
                    if row.iter().all(blank) {
                        continue;
                    }
                    header_row = Some(start_row + i as u32);
                    headers = vec![String::new(); start_col];
                    headers.extend(row.iter().map(|d| {
                        let t = text_of_data(d);
                        Cell::as_text(&cell_of_data(d, &t))
                    }));
                    break;
                }
                let header_row = header_row.ok_or_else(|| SourceError::Empty {
                    path: path.to_path_buf(),
                })?;
                Ok((headers, SheetBody::Loaded { range, header_row }, name))
            }
            Format::Csv => unreachable!("CSV is read by source::csv"),
        }
    }

    pub fn for_each_row(
        &mut self,
        path: &Path,
        cols: &[usize],
        f: &mut dyn FnMut(u64, &[Cell<'_>]),
    ) -> Result<(), SourceError> {
        match self {
            SheetBody::Xlsx {
                workbook,
                sheet,
                header_row,
            } => {
                let header_row = *header_row;
                let mut reader = workbook
                    .worksheet_cells_reader(sheet)
                    .map_err(|e| sheet_error(path, Format::Xlsx, &place(sheet, None), e))?;
                let mut last = None;
                // Column index → position in `cols` (the wanted columns of one row).
                let max_col = cols.iter().copied().max().unwrap_or(0);
                let mut slot = vec![usize::MAX; max_col + 1];
                for (i, c) in cols.iter().enumerate() {
                    slot[*c] = i;
                }
                let mut row_values: Vec<DataRef<'_>> = vec![DataRef::Empty; cols.len()];
                let mut current: Option<u32> = None;
                let emit = |row: u32,
                            values: &mut Vec<DataRef<'_>>,
                            f: &mut dyn FnMut(u64, &[Cell<'_>])| {
                    let texts: Vec<Option<String>> = values.iter().map(text_of_ref).collect();
                    let cells: Vec<Cell<'_>> = values
                        .iter()
                        .zip(&texts)
                        .map(|(v, t)| cell_of_ref(v, t))
                        .collect();
                    f(u64::from(row) + 1, &cells);
                    values.iter_mut().for_each(|v| *v = DataRef::Empty);
                };
                while let Some(cell) = reader
                    .next_cell()
                    .map_err(|e| sheet_error(path, Format::Xlsx, &place(sheet, last), e))?
                {
                    let (r, c) = cell.get_position();
                    last = Some((r, c));
                    bounds::check_position(path, sheet, r, c)?;
                    if r <= header_row {
                        continue;
                    }
                    if current != Some(r) {
                        if let Some(prev) = current {
                            emit(prev, &mut row_values, f);
                        }
                        current = Some(r);
                    }
                    let c = c as usize;
                    if c <= max_col && slot[c] != usize::MAX {
                        row_values[slot[c]] = cell.get_value().clone();
                    }
                }
                if let Some(prev) = current {
                    emit(prev, &mut row_values, f);
                }
                Ok(())
            }
            SheetBody::Loaded { range, header_row } => {
                let start_row = range.start().map(|s| s.0).unwrap_or(0);
                let start_col = range.start().map(|s| s.1).unwrap_or(0) as usize;
                let empty = Data::Empty;
                for (i, row) in range.rows().enumerate() {
                    let abs = start_row + i as u32;
                    if abs <= *header_row {
                        continue;
                    }
                    let values: Vec<&Data> = cols
                        .iter()
                        .map(|c| {
                            c.checked_sub(start_col)
                                .and_then(|c| row.get(c))
                                .unwrap_or(&empty)
                        })
                        .collect();
                    let texts: Vec<Option<String>> =
                        values.iter().map(|d| text_of_data(d)).collect();
                    let cells: Vec<Cell<'_>> = values
                        .iter()
                        .zip(&texts)
                        .map(|(d, t)| cell_of_data(d, t))
                        .collect();
                    f(u64::from(abs) + 1, &cells);
                }
                Ok(())
            }
        }
    }
}
