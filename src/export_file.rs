//! Reading a file Yampi exported (SKU export, stock export): `.xls` or `.xlsx` whatever its name
//! or link says, so the format is sniffed from the bytes.
//!
//! The bytes go to a temporary file and through `source::open`, so the size caps of
//! `src/source/bounds.rs` apply (an XLS is scanned before calamine loads it; XLSX cells are
//! checked as they stream) and the table built here is capped too: a hostile file is refused,
//! never held whole. Cells come out as the text a merchant would read: `12.3`, `5`, `000123`.
//!
//! Columns are found by name with [`norm`] (case, accents, spaces, `_` and `-` ignored); the
//! default names are in [`columns`].

use std::io::Write;

use crate::source::{self, Cell, Format};

/// The names Yampi's exports are assumed to use; a job's mapping may give others.
pub mod columns {
    /// The SKU export and import template as assumed until a live store shows otherwise
    /// (docs/yampi-api.md, Spreadsheets and queues): names in their accented spelling, in an
    /// order a real store may change.
    pub const SKU_TEMPLATE: [&str; 12] = [
        "id",
        "id_produto",
        "sku",
        "nome_produto",
        "valores_de_variacoes",
        "preço_custo",
        "preço_venda",
        "preço_promocional",
        "peso_em_kg",
        "altura_em_cm",
        "largura_em_cm",
        "comprimento_em_cm",
    ];
    pub const SKU_ID: &[&str] = &["id"]; // SKU export
    pub const PRODUCT_ID: &[&str] = &["id_produto"];
    pub const SKU: &[&str] = &["sku"];
    pub const PRICE_COST: &[&str] = &["preco_custo"];
    pub const PRICE_SALE: &[&str] = &["preco_venda"];
    pub const PRICE_DISCOUNT: &[&str] = &["preco_promocional"];
    pub const STOCK_SKU_ID: &[&str] = &["id_sku", "sku_id", "id"]; // stock export
    pub const QUANTITY: &[&str] = &["quantidade", "estoque", "saldo"];
    pub const MIN_QUANTITY: &[&str] = &["quantidade_minima", "estoque_minimo"];
}

/// Column names the merchant may set (the mapping's `[export]` table); each is tried before the
/// defaults of `export_file::columns`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportAliases {
    pub sku_id: Vec<String>,
    pub product_id: Vec<String>,
    pub sku: Vec<String>,
    pub price_cost: Vec<String>,
    pub price_sale: Vec<String>,
    pub price_discount: Vec<String>,
    pub stock_sku_id: Vec<String>,
    pub quantity: Vec<String>,
    pub min_quantity: Vec<String>,
}

/// The most cells (data rows × header columns) a table may hold: the cap `source` puts on a
/// loaded sheet.
pub const MAX_TABLE_CELLS: u64 = source::MAX_LOADED_CELLS;
/// The most bytes of cell text a table may hold.
pub const MAX_TABLE_TEXT_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Xls,
    Xlsx,
}

impl FileKind {
    fn format(self) -> Format {
        match self {
            FileKind::Xls => Format::Xls,
            FileKind::Xlsx => Format::Xlsx,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            FileKind::Xls => ".xls",
            FileKind::Xlsx => ".xlsx",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportFileError {
    #[error("{what} is neither a .xls nor a .xlsx file: {looks_like}")]
    UnknownFormat { what: String, looks_like: String },
    /// A read error, with the file named by `what`.
    #[error("{message}")]
    Read { message: String },
    #[error("{what} is refused: {detail}")]
    TooLarge { what: String, detail: String },
    #[error("{what} is empty: it has no header row")]
    Empty { what: String },
    #[error("{what}: {source}")]
    Ambiguous {
        what: String,
        source: AmbiguousColumn,
    },
    #[error("{what} has no column named {} (its columns: {available})", .aliases.join(" or "))]
    MissingColumn {
        what: String,
        aliases: Vec<String>,
        available: String,
    },
}

/// Two columns of one header answer to the same names.
#[derive(Debug, thiserror::Error)]
#[error(
    "columns {first} (\"{first_name}\") and {second} (\"{second_name}\") both match {aliases}; rename one or name the one to use in the job's mapping"
)]
pub struct AmbiguousColumn {
    /// 1-based column numbers.
    pub first: usize,
    pub first_name: String,
    pub second: usize,
    pub second_name: String,
    pub aliases: String,
}

/// The first sheet of an export, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    /// Data rows (blank rows skipped), each as wide as the header.
    pub rows: Vec<Vec<String>>,
    /// The file's row number (1-based) of each of `rows`.
    pub row_numbers: Vec<u64>,
    /// What the file is, for errors ("the SKU export of queue 812").
    pub what: String,
}

impl Table {
    /// The column answering to `aliases`, if any.
    pub fn column(&self, aliases: &[&str]) -> Result<Option<usize>, ExportFileError> {
        find_column(&self.header, aliases).map_err(|source| ExportFileError::Ambiguous {
            what: self.what.clone(),
            source,
        })
    }

    /// The column answering to `aliases`; missing is an error naming the columns there are.
    pub fn require(&self, aliases: &[&str]) -> Result<usize, ExportFileError> {
        self.column(aliases)?
            .ok_or_else(|| ExportFileError::MissingColumn {
                what: self.what.clone(),
                aliases: aliases.iter().map(|a| format!("\"{a}\"")).collect(),
                available: self
                    .header
                    .iter()
                    .filter(|h| !h.is_empty())
                    .map(|h| format!("\"{h}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The kind of spreadsheet the bytes hold, from their first bytes.
pub fn sniff(bytes: &[u8]) -> Option<FileKind> {
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        Some(FileKind::Xls)
    } else if bytes.starts_with(b"PK\x03\x04") {
        Some(FileKind::Xlsx)
    } else {
        None
    }
}

/// What bytes that are no spreadsheet look like, for the error.
fn looks_like(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the body is empty".into();
    }
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let lower = trimmed.to_ascii_lowercase();
    let start: String = trimmed
        .chars()
        .take(40)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") || lower.contains("<html")
    {
        format!("it looks like an HTML page (starting \"{start}\"), perhaps an error or login page")
    } else if lower.starts_with("<?xml") || lower.starts_with('<') {
        format!("it looks like XML (starting \"{start}\"); SpreadsheetML 2003 is not read")
    } else if lower.starts_with('{') || lower.starts_with('[') {
        format!("it looks like JSON (starting \"{start}\"), perhaps an API error")
    } else if bytes.starts_with(b"PK") {
        "it is a zip archive with no file in it".into()
    } else if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        format!("it looks like text (starting \"{start}\")")
    } else {
        let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02X}")).collect();
        format!("its first bytes are {}", hex.join(" "))
    }
}

/// Column names compared: accents stripped, lower case, spaces, `_` and `-` ignored
/// (`Preço Venda` = `preco_venda` = `PRECO-VENDA`).
pub fn norm(name: &str) -> String {
    source::normalize_header(name)
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .collect()
}

/// The column named by the first of `aliases` (a priority list: the merchant's names first, then
/// the defaults) that the header has. Two columns answering to that same name are an error, not
/// a guess; a later alias is never consulted once an earlier one matched, so a stock export with
/// both `id_sku` and a row `id` is read by `id_sku`.
pub fn find_column(header: &[String], aliases: &[&str]) -> Result<Option<usize>, AmbiguousColumn> {
    let names: Vec<String> = header.iter().map(|h| norm(h)).collect();
    for alias in aliases {
        let wanted = norm(alias);
        let mut found = names
            .iter()
            .enumerate()
            .filter(|(i, h)| !header[*i].trim().is_empty() && **h == wanted);
        let Some((first, _)) = found.next() else {
            continue;
        };
        if let Some((second, _)) = found.next() {
            return Err(AmbiguousColumn {
                first: first + 1,
                first_name: header[first].clone(),
                second: second + 1,
                second_name: header[second].clone(),
                aliases: format!("\"{alias}\""),
            });
        }
        return Ok(Some(first));
    }
    Ok(None)
}

/// Reads the first sheet of an export; `what` names the file in errors.
pub fn read_table(bytes: &[u8], what: &str) -> Result<Table, ExportFileError> {
    let kind = sniff(bytes).ok_or_else(|| ExportFileError::UnknownFormat {
        what: what.to_string(),
        looks_like: looks_like(bytes),
    })?;
    let io = |e: std::io::Error| ExportFileError::Read {
        message: format!("{what} cannot be read: a temporary copy failed: {e}"),
    };
    // calamine opens files by path (and by extension, for XLS), and `source` checks bounds by path.
    let mut temp = tempfile::Builder::new()
        .prefix("yampi-export-")
        .suffix(kind.extension())
        .tempfile()
        .map_err(io)?;
    temp.write_all(bytes).map_err(io)?;
    temp.flush().map_err(io)?;
    let temp_name = temp.path().display().to_string();
    let from_source = |e: source::SourceError| match e {
        source::SourceError::Empty { .. } => ExportFileError::Empty {
            what: what.to_string(),
        },
        other => ExportFileError::Read {
            message: other.to_string().replace(&temp_name, what),
        },
    };

    let mut opened = source::open(temp.path(), Some(kind.format()), None).map_err(from_source)?;
    let header = opened.headers.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(ExportFileError::Empty {
            what: what.to_string(),
        });
    }
    let cols: Vec<usize> = (0..header.len()).collect();
    let width = header.len() as u64;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row_numbers = Vec::new();
    let mut text_bytes = 0u64;
    let mut refused: Option<String> = None;
    opened
        .for_each_row(&cols, &mut |line, cells| {
            if refused.is_some() {
                return;
            }
            if (rows.len() as u64 + 1).saturating_mul(width) > MAX_TABLE_CELLS {
                refused = Some(format!(
                    "its {} columns hold more than {MAX_TABLE_CELLS} cells by row {line}",
                    width
                ));
                return;
            }
            let row: Vec<String> = cells.iter().map(Cell::as_text).collect();
            text_bytes += row.iter().map(|s| s.len() as u64).sum::<u64>();
            if text_bytes > MAX_TABLE_TEXT_BYTES {
                refused = Some(format!(
                    "its cells hold more than {MAX_TABLE_TEXT_BYTES} bytes of text by row {line}"
                ));
                return;
            }
            rows.push(row);
            row_numbers.push(line);
        })
        .map_err(from_source)?;
    if let Some(detail) = refused {
        return Err(ExportFileError::TooLarge {
            what: what.to_string(),
            detail,
        });
    }
    Ok(Table {
        header,
        rows,
        row_numbers,
        what: what.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xls::{XlsCell, write_xls};
    use rust_decimal::dec;

    const HEADER: [&str; 5] = ["id", "sku", "Preço Venda", "estoque", "nome"];

    fn table_rows() -> Vec<Vec<String>> {
        [
            ["000123", "AÇÃO-1", "12.3", "5", "Camiseta"],
            ["812345", "B-2", "1299.9", "0", ""],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
    }

    /// The same sheet as `.xls` (this crate's writer): id as text, prices and stock as numbers,
    /// a blank row between the two data rows.
    fn xls_bytes(dir: &std::path::Path) -> Vec<u8> {
        let path = dir.join("w.xls");
        let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
        let e = || XlsCell::Empty;
        let rows = vec![
            vec![
                XlsCell::Text("000123".into()),
                XlsCell::Text("AÇÃO-1".into()),
                XlsCell::Number(dec!(12.30)),
                XlsCell::Number(dec!(5)),
                XlsCell::Text("Camiseta".into()),
            ],
            vec![e(), e(), e(), e(), e()],
            vec![
                XlsCell::Number(dec!(812345)),
                XlsCell::Text("B-2".into()),
                XlsCell::Number(dec!(1299.90)),
                XlsCell::Number(dec!(0)),
                e(),
            ],
        ];
        write_xls(&path, "skus", &header, &rows).unwrap();
        std::fs::read(&path).unwrap()
    }

    /// The same sheet as `.xlsx` (rust_xlsxwriter), one empty row above the header.
    fn xlsx_bytes() -> Vec<u8> {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (c, h) in HEADER.iter().enumerate() {
            ws.write_string(1, c as u16, *h).unwrap();
        }
        ws.write_string(2, 0, "000123").unwrap();
        ws.write_string(2, 1, "AÇÃO-1").unwrap();
        ws.write_number(2, 2, 12.3).unwrap();
        ws.write_number(2, 3, 5.0).unwrap();
        ws.write_string(2, 4, "Camiseta").unwrap();
        ws.write_number(4, 0, 812345.0).unwrap();
        ws.write_string(4, 1, "B-2").unwrap();
        ws.write_number(4, 2, 1299.9).unwrap();
        ws.write_number(4, 3, 0.0).unwrap();
        wb.save_to_buffer().unwrap()
    }

    #[test]
    fn xls_and_xlsx_read_back_as_the_same_table_whatever_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let xls = xls_bytes(dir.path());
        let xlsx = xlsx_bytes();
        assert_eq!(sniff(&xls), Some(FileKind::Xls));
        assert_eq!(sniff(&xlsx), Some(FileKind::Xlsx));
        // Swapped names: the bytes decide.
        let as_xlsx = dir.path().join("skus.xlsx");
        let as_xls = dir.path().join("skus.xls");
        std::fs::write(&as_xlsx, &xls).unwrap();
        std::fs::write(&as_xls, &xlsx).unwrap();
        let a = read_table(&std::fs::read(&as_xlsx).unwrap(), "skus.xlsx").unwrap();
        let b = read_table(&std::fs::read(&as_xls).unwrap(), "skus.xls").unwrap();
        assert_eq!(a.header, HEADER);
        assert_eq!(a.rows, table_rows());
        assert_eq!(
            a.row_numbers,
            vec![2, 4],
            "the blank row is skipped, numbers kept"
        );
        assert_eq!(b.header, a.header);
        assert_eq!(b.rows, a.rows);
        assert_eq!(b.row_numbers, vec![3, 5]);
    }

    #[test]
    fn numbers_read_without_float_noise() {
        assert_eq!(Cell::Number(12.3).as_text(), "12.3");
        assert_eq!(Cell::Number(5.0).as_text(), "5");
        assert_eq!(Cell::Number(812345.0).as_text(), "812345");
        assert_eq!(Cell::Number(0.1 + 0.2).as_text(), "0.3");
        assert_eq!(Cell::Number(12.299999999999999).as_text(), "12.3");
        assert_eq!(Cell::Number(-0.5).as_text(), "-0.5");
        assert_eq!(Cell::Number(999999999.99).as_text(), "999999999.99");
        assert_eq!(
            Cell::Number(1e30).as_text(),
            "1000000000000000000000000000000"
        );
    }

    #[test]
    fn columns_match_ignoring_case_accents_spaces_and_separators() {
        assert_eq!(norm("Preço Venda"), "precovenda");
        assert_eq!(norm("preco_venda"), norm("PRECO-VENDA"));
        assert_eq!(norm(" Preço  Promocional "), norm("preco_promocional"));
        let header: Vec<String> = ["ID", "SKU", "Preço Venda", "Quantidade Mínima", "Saldo"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(find_column(&header, columns::PRICE_SALE).unwrap(), Some(2));
        assert_eq!(find_column(&header, columns::SKU_ID).unwrap(), Some(0));
        assert_eq!(
            find_column(&header, columns::MIN_QUANTITY).unwrap(),
            Some(3)
        );
        assert_eq!(find_column(&header, columns::QUANTITY).unwrap(), Some(4));
        assert_eq!(find_column(&header, columns::PRICE_COST).unwrap(), None);
        // `id_sku` and a row `id` both present: the earlier alias wins.
        let stock: Vec<String> = ["id", "id_sku", "quantidade"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(find_column(&stock, columns::STOCK_SKU_ID).unwrap(), Some(1));
        // Two columns answering to the same name are not guessed between.
        let twice: Vec<String> = ["ID SKU", "id_sku", "quantidade"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let msg = find_column(&twice, columns::STOCK_SKU_ID)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"ID SKU\"") && msg.contains("\"id_sku\""),
            "{msg}"
        );
        let table = Table {
            header: twice,
            rows: vec![],
            row_numbers: vec![],
            what: "the stock export of queue 9".into(),
        };
        let e = table.column(columns::STOCK_SKU_ID).unwrap_err().to_string();
        assert!(
            e.starts_with("the stock export of queue 9: columns 1"),
            "{e}"
        );
        let table = Table {
            header: stock,
            rows: vec![],
            row_numbers: vec![],
            what: "the stock export of queue 9".into(),
        };
        let e = table.require(columns::PRICE_SALE).unwrap_err().to_string();
        assert!(
            e.contains("no column named \"preco_venda\"") && e.contains("\"id_sku\""),
            "{e}"
        );
    }

    #[test]
    fn bodies_that_are_no_spreadsheet_are_errors_that_say_what_they_look_like() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "empty"),
            (b"<!DOCTYPE html><html><body>502 Bad Gateway", "HTML page"),
            (b"  <html><head>", "HTML page"),
            (br#"{"message":"Unauthenticated."}"#, "JSON"),
            (b"\x00\x01\x02garbage\xff\xfe", "first bytes are 00 01 02"),
            (b"PK\x05\x06\x00\x00", "zip archive"),
        ];
        for (bytes, expect) in cases {
            let e = read_table(bytes, "the SKU export of queue 812").unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with("the SKU export of queue 812 is neither") && msg.contains(expect),
                "{msg}"
            );
        }
        // Right magic, broken body: an error naming the file, never a panic.
        let mut broken = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        broken.extend_from_slice(&[0xAB; 700]);
        let e = read_table(&broken, "the SKU export of queue 812").unwrap_err();
        assert!(e.to_string().contains("the SKU export of queue 812"), "{e}");
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0x11; 300]);
        let e = read_table(&zip, "the SKU export of queue 812").unwrap_err();
        assert!(e.to_string().contains("the SKU export of queue 812"), "{e}");
        // An empty sheet.
        let mut wb = rust_xlsxwriter::Workbook::new();
        wb.add_worksheet();
        let e = read_table(&wb.save_to_buffer().unwrap(), "x").unwrap_err();
        assert!(matches!(e, ExportFileError::Empty { .. }), "{e}");
    }

    #[test]
    fn an_xls_declaring_a_huge_sheet_is_refused_before_it_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = xls_bytes(dir.path());
        // The DIMENSIONS record (type 0x0200, 14 bytes): last row + 1 set to 1,000,000 and last
        // column + 1 to 255, as a hostile file may declare.
        let at = bytes
            .windows(4)
            .position(|w| w == [0x00, 0x02, 0x0E, 0x00])
            .expect("a DIMENSIONS record");
        bytes[at + 8..at + 12].copy_from_slice(&1_000_000u32.to_le_bytes());
        bytes[at + 14..at + 16].copy_from_slice(&255u16.to_le_bytes());
        let e = read_table(&bytes, "the SKU export of queue 812").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("the SKU export of queue 812 is refused") && msg.contains("cells"),
            "{msg}"
        );
    }

    #[test]
    fn an_xlsx_too_wide_and_long_for_the_cell_cap_is_refused() {
        // One header cell at the last column makes every row 16,384 cells wide.
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "id").unwrap();
        ws.write_string(0, 16_383, "far").unwrap();
        let rows = MAX_TABLE_CELLS / 16_384 + 2;
        for r in 1..=rows as u32 {
            ws.write_number(r, 0, f64::from(r)).unwrap();
        }
        let e = read_table(&wb.save_to_buffer().unwrap(), "the stock export").unwrap_err();
        assert!(matches!(e, ExportFileError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("the stock export is refused"), "{e}");
    }
}
