//! ERP source files → rows of cells (README.md, Mapping reference).
//!
//! CSV (`;`, tab, `|` or `,`; UTF-8, UTF-16 or Windows-1252; detected), XLSX (streamed cell by cell), XLS and ODS
//! (loaded whole: calamine cannot stream them, so `bounds` checks their size first). Headers are matched after trimming, ignoring case
//! and accents. Only the columns a mapping asks for are handed out, one row at a time, so
//! callers never hold a parsed table. Picking the newest finished file of a glob and hashing it
//! live here too.

mod bounds;
mod csv;
mod pick;
mod sheet;

use std::path::{Path, PathBuf};

pub use bounds::{MAX_COLUMNS, MAX_LOADED_CELLS, MAX_ROWS};
pub use pick::{MAX_SETTLE_LOOKS, Picked, content_hash, pick_newest, pick_settled};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Xlsx,
    Xls,
    Ods,
}

impl Format {
    pub fn from_path(p: &Path) -> Option<Format> {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            "xls" => Some(Format::Xls),
            "ods" => Some(Format::Ods),
            _ => None,
        }
    }
}

/// Header normalisation used everywhere: trim, strip accents, lowercase, collapse inner spaces.
pub fn normalize_header(s: &str) -> String {
    let plain = if s.is_ascii() {
        s.to_string()
    } else {
        deunicode::deunicode(s)
    };
    plain
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// One cell as read. Numbers stay numbers: a spreadsheet's 12.5 is never re-parsed with a
/// decimal comma. Text is trimmed.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Number(f64),
    Bool(bool),
    Error(String),
}

impl Cell<'_> {
    /// The cell as a merchant reads it: numbers without float noise (at most 15 significant
    /// digits, no trailing zeros: `12.3`, `5`, `812345`), booleans as `TRUE`/`FALSE`.
    pub fn as_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => (*t).to_string(),
            Cell::Number(f) => number_text(*f),
            Cell::Bool(true) => "TRUE".into(),
            Cell::Bool(false) => "FALSE".into(),
            Cell::Error(e) => e.clone(),
        }
    }

    fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(t) => t.is_empty(),
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("cannot read {path}: line {line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path} is not a readable {format} file: {message}")]
    Sheet {
        path: PathBuf,
        format: String,
        message: String,
    },
    #[error(
        "{path} is refused: it is {size_mb} MB, past the {max_mb} MB a CSV source may be (split the export, or save it as XLSX)"
    )]
    CsvTooLarge {
        path: PathBuf,
        size_mb: u64,
        max_mb: u64,
    },
    #[error("{path} is refused: sheet \"{sheet}\": {detail}")]
    SheetTooLarge {
        path: PathBuf,
        sheet: String,
        detail: String,
    },
    #[error("{path} has no sheet named \"{sheet}\" (sheets: {available})")]
    NoSheet {
        path: PathBuf,
        sheet: String,
        available: String,
    },
    #[error("{path} is empty: it has no header row")]
    Empty { path: PathBuf },
    #[error("{path} lacks the column(s) {} (its columns: {}){hint}", quote_list(.missing), quote_list(.available))]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        available: Vec<String>,
        /// Empty, or a sentence (with its leading "; ") when the headers look garbled.
        hint: String,
    },
    #[error("{path} has the column \"{column}\" more than once (columns {}); rename one", .positions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" and "))]
    DuplicateColumn {
        path: PathBuf,
        column: String,
        positions: Vec<usize>,
    },
    #[error(
        "cannot tell the format of {path} from its extension; set source.format (csv, xlsx, xls, ods)"
    )]
    UnknownFormat { path: PathBuf },
    #[error(
        "{path} is still being written: its size or modification time changed between each of {looks} looks {settle_ms} ms apart; nothing was read (run again once the export is finished, or raise source.settle_ms)"
    )]
    Unsettled {
        path: PathBuf,
        settle_ms: u64,
        looks: u32,
    },
    #[error("{pattern} is not a valid file pattern: {message}")]
    Pattern { pattern: String, message: String },
}

/// A spreadsheet cell's name, as the user sees it: 0-based row and column → "B12".
pub(crate) fn cell_name(row: u64, col: u64) -> String {
    let mut letters = Vec::new();
    let mut n = col + 1;
    while n > 0 {
        letters.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), row + 1)
}

/// Text whose Windows-1252 bytes are UTF-8 with accents ("CÃ“DIGO" is "CÓDIGO" read wrongly).
fn looks_like_mojibake(s: &str) -> bool {
    !s.is_ascii() && unmangle_bytes(s).is_some_and(|t| !t.is_ascii() && t != s)
}

fn unmangle_bytes(s: &str) -> Option<String> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(s);
    if unmappable {
        return None;
    }
    String::from_utf8(bytes.into_owned()).ok()
}

fn unmangle(s: &str) -> String {
    unmangle_bytes(s).unwrap_or_else(|| s.to_string())
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number as a merchant reads it: at most 15 significant digits (no float noise), no
/// trailing zeros, no exponent for ordinary values (`12.3`, `5`, `812345`).
fn number_text(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    let sci = format!("{f:.14e}");
    match rust_decimal::Decimal::from_scientific(&sci) {
        Ok(d) => d.normalize().to_string(),
        Err(_) => f.to_string(),
    }
}

enum Body {
    Csv(csv::CsvBody),
    Sheet(sheet::SheetBody),
}

/// An opened source: its headers are known, its rows not read yet.
pub struct OpenedSource {
    pub path: PathBuf,
    pub format: Format,
    pub sheet: Option<String>,
    /// Header cells as written in the file.
    pub headers: Vec<String>,
    body: Body,
}

pub fn open(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
) -> Result<OpenedSource, SourceError> {
    let format =
        format
            .or_else(|| Format::from_path(path))
            .ok_or_else(|| SourceError::UnknownFormat {
                path: path.to_path_buf(),
            })?;
    let (headers, body, sheet_name) = match format {
        Format::Csv => {
            let (headers, body) = csv::CsvBody::open(path)?;
            (headers, Body::Csv(body), None)
        }
        _ => {
            let (headers, body, name) = sheet::SheetBody::open(path, format, sheet)?;
            (headers, Body::Sheet(body), Some(name))
        }
    };
    Ok(OpenedSource {
        path: path.to_path_buf(),
        format,
        sheet: sheet_name,
        headers,
        body,
    })
}

/// Headers only (for `check`).
pub fn headers(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
) -> Result<Vec<String>, SourceError> {
    Ok(open(path, format, sheet)?.headers)
}

impl OpenedSource {
    /// Index of each wanted column (compared with `normalize_header`); the error lists every
    /// missing column.
    pub fn resolve(&self, wanted: &[&str]) -> Result<Vec<usize>, SourceError> {
        let normalized: Vec<String> = self.headers.iter().map(|h| normalize_header(h)).collect();
        let mut out = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for w in wanted {
            let nw = normalize_header(w);
            let positions: Vec<usize> = normalized
                .iter()
                .enumerate()
                .filter(|(_, h)| **h == nw)
                .map(|(i, _)| i)
                .collect();
            match positions.as_slice() {
                [] => missing.push(w.to_string()),
                [one] => out.push(*one),
                many => {
                    return Err(SourceError::DuplicateColumn {
                        path: self.path.clone(),
                        column: w.to_string(),
                        positions: many.iter().map(|p| p + 1).collect(),
                    });
                }
            }
        }
        if !missing.is_empty() {
            let hint = self
                .headers
                .iter()
                .find(|h| looks_like_mojibake(h))
                .map(|h| {
                    format!(
                        "; the file's encoding looks wrong: the header \"{h}\" reads like UTF-8 text decoded as Windows-1252 (\"{}\"), so the file was converted twice; export it again from the ERP as UTF-8 or Windows-1252 and do not re-save it in another encoding",
                        unmangle(h)
                    )
                })
                .unwrap_or_default();
            return Err(SourceError::MissingColumns {
                hint,
                path: self.path.clone(),
                missing,
                available: self
                    .headers
                    .iter()
                    .filter(|h| !h.trim().is_empty())
                    .cloned()
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Streams every data row, calling `f(row_number, cells)` with the cells of `cols` in
    /// order. Row numbers are the file's (the header is row 1). Blank rows are skipped.
    /// Returns the number of data rows seen.
    pub fn for_each_row(
        &mut self,
        cols: &[usize],
        f: &mut dyn FnMut(u64, &[Cell<'_>]),
    ) -> Result<u64, SourceError> {
        let path = self.path.clone();
        let mut count = 0u64;
        let mut wrapped = |row: u64, cells: &[Cell<'_>]| {
            if cells.iter().all(Cell::is_blank) {
                return;
            }
            count += 1;
            f(row, cells);
        };
        match &mut self.body {
            Body::Csv(b) => b.for_each_row(&path, cols, &mut wrapped)?,
            Body::Sheet(b) => b.for_each_row(&path, cols, &mut wrapped)?,
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests;
