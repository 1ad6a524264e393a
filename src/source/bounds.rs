//! Size caps for spreadsheets, checked before anything is materialised.
//!
//! A tiny file can declare a huge sheet: an XLSX cell at column PUQCYS, an ODS row repeated a
//! million times, an XLS cell at (65535, 255) or a DIMENSIONS record that says so. calamine
//! loads XLS and ODS workbooks whole (every sheet as a dense grid), so those files are scanned
//! here first, in a streaming pass that only counts: the used area of every sheet must fit the
//! caps below, or the file is refused with the sheet and the cap named. XLSX is streamed cell by
//! cell and only needs its coordinates checked (`check_position`).

use std::io::BufReader;
use std::path::Path;

use super::SourceError;

/// Excel's own sheet limits.
pub const MAX_ROWS: u64 = 1_048_576;
pub const MAX_COLUMNS: u64 = 16_384;

/// The most cells an XLS or ODS sheet's used area (rows × columns, empty cells included) may
/// span: calamine holds that whole grid in memory (tens of bytes a cell). A real export of
/// 200,000 rows × 10 columns is 2 million; larger sheets are read fine as XLSX or CSV, which
/// are streamed.
pub const MAX_LOADED_CELLS: u64 = 5_000_000;

fn too_large(path: &Path, sheet: &str, detail: String) -> SourceError {
    SourceError::SheetTooLarge {
        path: path.to_path_buf(),
        sheet: sheet.to_string(),
        detail,
    }
}

fn unreadable(path: &Path, format: &str, message: impl Into<String>) -> SourceError {
    SourceError::Sheet {
        path: path.to_path_buf(),
        format: format.to_string(),
        message: message.into(),
    }
}

/// A streamed XLSX cell must lie within Excel's grid (0-based row and column).
pub fn check_position(path: &Path, sheet: &str, row: u32, col: u32) -> Result<(), SourceError> {
    if u64::from(col) >= MAX_COLUMNS {
        return Err(too_large(
            path,
            sheet,
            format!(
                "a cell at column {} is past the {MAX_COLUMNS}-column limit",
                u64::from(col) + 1
            ),
        ));
    }
    if u64::from(row) >= MAX_ROWS {
        return Err(too_large(
            path,
            sheet,
            format!(
                "a cell at row {} is past the {MAX_ROWS}-row limit",
                u64::from(row) + 1
            ),
        ));
    }
    Ok(())
}

/// The used area of one sheet, grown cell by cell (half-open ranges).
#[derive(Default)]
struct Area {
    rows: Option<(u64, u64)>,
    cols: Option<(u64, u64)>,
}

impl Area {
    fn add(&mut self, row: u64, row_count: u64, col: u64, col_count: u64) {
        let grow = |r: &mut Option<(u64, u64)>, start: u64, n: u64| {
            let end = start.saturating_add(n);
            *r = Some(match *r {
                None => (start, end),
                Some((a, b)) => (a.min(start), b.max(end)),
            });
        };
        grow(&mut self.rows, row, row_count);
        grow(&mut self.cols, col, col_count);
    }

    fn check(&self, path: &Path, sheet: &str, what: &str) -> Result<(), SourceError> {
        let (Some((r0, r1)), Some((c0, c1))) = (self.rows, self.cols) else {
            return Ok(());
        };
        let (rows, cols) = (r1 - r0, c1 - c0);
        if r1 > MAX_ROWS {
            return Err(too_large(
                path,
                sheet,
                format!("its {what} reaches row {r1}, past the {MAX_ROWS}-row limit"),
            ));
        }
        if c1 > MAX_COLUMNS {
            return Err(too_large(
                path,
                sheet,
                format!("its {what} reaches column {c1}, past the {MAX_COLUMNS}-column limit"),
            ));
        }
        let cells = rows.saturating_mul(cols);
        if cells > MAX_LOADED_CELLS {
            return Err(too_large(
                path,
                sheet,
                format!(
                    "its {what} spans {rows} rows × {cols} columns = {cells} cells, more than the \
                     {MAX_LOADED_CELLS} this format can be loaded with (save it as XLSX or CSV, which are streamed)"
                ),
            ));
        }
        Ok(())
    }
}

// ---- ODS ------------------------------------------------------------------------------------

/// Scans `content.xml` of an ODS file: every table's used area, with its repeated rows and
/// columns counted (not expanded), must fit the caps. Trailing empty repeats, which LibreOffice
/// writes to the sheet's end, do not count: calamine does not expand them.
pub fn check_ods(path: &Path) -> Result<(), SourceError> {
    use quick_xml::events::Event;

    let file = std::fs::File::open(path).map_err(|e| SourceError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| unreadable(path, "ODS", e.to_string()))?;
    let content = zip
        .by_name("content.xml")
        .map_err(|e| unreadable(path, "ODS", format!("content.xml: {e}")))?;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(content));
    let mut buf = Vec::new();

    let mut sheet = String::new();
    let mut area = Area::default();
    let (mut row, mut row_repeat, mut col) = (0u64, 1u64, 0u64);
    let mut row_has_content = false;
    let mut row_cols: Option<(u64, u64)> = None;
    // The cell just opened (column, repeat, has a value), until its content is seen.
    let mut open_cell: Option<(u64, u64, bool)> = None;
    let mark = |has: &mut bool, cols: &mut Option<(u64, u64)>, col: u64, n: u64| {
        *has = true;
        let end = col.saturating_add(n);
        *cols = Some(match *cols {
            None => (col, end),
            Some((a, b)) => (a.min(col), b.max(end)),
        });
    };
    // A repeat count that is not a number is read as "huge": refused, never guessed small.
    let repeat = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> u64 {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .map(|a| a.value.trim().parse::<u64>().unwrap_or(u64::MAX))
            .unwrap_or(1)
            .max(1)
    };
    loop {
        buf.clear();
        let ev = xml
            .read_event_into(&mut buf)
            .map_err(|e| unreadable(path, "ODS", format!("content.xml: {e}")))?;
        let (start, empty_elem) = match &ev {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            match e.name().as_ref() {
                "table:table" => {
                    sheet = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == "table:name")
                        .map(|a| a.value.into_owned())
                        .unwrap_or_default();
                    area = Area::default();
                    row = 0;
                }
                "table:table-row" => {
                    row_repeat = repeat(e, "table:number-rows-repeated");
                    col = 0;
                    row_has_content = false;
                    row_cols = None;
                    if empty_elem {
                        row = row.saturating_add(row_repeat);
                    }
                }
                "table:table-cell" | "table:covered-table-cell" => {
                    let n = repeat(e, "table:number-columns-repeated");
                    let has_value = e
                        .attributes()
                        .flatten()
                        .any(|a| matches!(a.key.as_ref(), "office:value-type" | "table:formula"));
                    if let Some(bad) = unparsable_number(e) {
                        return Err(unreadable(
                            path,
                            "ODS",
                            format!(
                                "sheet \"{sheet}\", cell {}: the cell is marked as a number but holds \"{bad}\"; type the number again in that cell (or format it as text) and save the file again",
                                super::cell_name(row, col)
                            ),
                        ));
                    }
                    // A cell with a value, or with content (text) inside, is materialised;
                    // a bare styled cell is not.
                    open_cell = (!empty_elem).then_some((col, n, has_value));
                    if has_value || empty_elem {
                        if has_value {
                            mark(&mut row_has_content, &mut row_cols, col, n);
                        }
                        open_cell = None;
                    }
                    col = col.saturating_add(n);
                }
                // Anything inside an open cell (text:p, …) is content.
                _ => {
                    if let Some((c, n, _)) = open_cell.take() {
                        mark(&mut row_has_content, &mut row_cols, c, n);
                    }
                }
            }
        }
        match &ev {
            Event::End(e)
                if matches!(
                    e.name().as_ref(),
                    "table:table-cell" | "table:covered-table-cell"
                ) =>
            {
                open_cell = None;
            }
            Event::End(e) if e.name().as_ref() == "table:table-row" => {
                if row_has_content && let Some((c0, c1)) = row_cols {
                    area.add(row, row_repeat, c0, c1 - c0);
                }
                row = row.saturating_add(row_repeat);
            }
            Event::End(e) if e.name().as_ref() == "table:table" => {
                area.check(path, &sheet, "used area")?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(())
}

/// The `office:value` of a numeric ODS cell that is not a number (calamine stops the whole file
/// on it with a bare "Parse float error"), cut to 40 characters.
fn unparsable_number(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    let attr = |name: &str| {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .map(|a| a.value.to_string())
    };
    let kind = attr("office:value-type")?;
    if !matches!(kind.as_str(), "float" | "percentage" | "currency") {
        return None;
    }
    let value = attr("office:value")?;
    value
        .parse::<f64>()
        .is_err()
        .then(|| value.chars().take(40).collect())
}

// ---- XLS ------------------------------------------------------------------------------------

/// Scans the BIFF records of an XLS file: each worksheet's DIMENSIONS record and the cells it
/// holds must fit the caps (calamine reserves the declared area, then fills the cells' box).
pub fn check_xls(path: &Path) -> Result<(), SourceError> {
    let bytes = std::fs::read(path).map_err(|e| SourceError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let stream = cfb_workbook_stream(&bytes).map_err(|m| unreadable(path, "XLS", m))?;
    scan_biff(path, &stream)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The "Workbook" (or "Book") stream of a compound file, read through its FAT or mini FAT.
fn cfb_workbook_stream(b: &[u8]) -> Result<Vec<u8>, String> {
    const MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    const END: u32 = 0xFFFF_FFFE;
    let bad = |what: &str| format!("not an OLE compound file ({what})");
    if b.get(..8) != Some(&MAGIC[..]) {
        return Err(bad("no signature"));
    }
    let shift = u16_at(b, 0x1E).ok_or_else(|| bad("short header"))?;
    let mini_shift = u16_at(b, 0x20).ok_or_else(|| bad("short header"))?;
    if !(7..=16).contains(&shift) || mini_shift >= shift {
        return Err(bad("sector size"));
    }
    let ss = 1usize << shift;
    let mss = 1usize << mini_shift;
    let field = |at| u32_at(b, at).ok_or_else(|| bad("short header"));
    let (dir_start, cutoff) = (field(0x30)?, field(0x38)?);
    let (mini_fat_start, difat_start, difat_count) = (field(0x3C)?, field(0x44)?, field(0x48)?);
    let sectors = b.len() / ss;
    let sector = |n: u32| -> Option<&[u8]> {
        let start = (n as usize).checked_add(1)?.checked_mul(ss)?;
        b.get(start..start.checked_add(ss)?)
    };
    // FAT sector numbers: 109 in the header, the rest in the DIFAT chain.
    let mut fat_sectors: Vec<u32> = (0..109)
        .filter_map(|i| u32_at(b, 0x4C + 4 * i))
        .filter(|n| *n < END - 2)
        .collect();
    let mut next = difat_start;
    for _ in 0..difat_count.min(sectors as u32) {
        let Some(s) = sector(next) else { break };
        let per = ss / 4 - 1;
        fat_sectors.extend(
            (0..per)
                .filter_map(|i| u32_at(s, 4 * i))
                .filter(|n| *n < END - 2),
        );
        next = u32_at(s, ss - 4).unwrap_or(END);
    }
    let mut fat: Vec<u32> = Vec::new();
    for n in fat_sectors.iter().take(sectors) {
        let s = sector(*n).ok_or_else(|| bad("FAT sector out of the file"))?;
        fat.extend((0..ss / 4).filter_map(|i| u32_at(s, 4 * i)));
    }
    // A chain never has more links than the file has sectors: a loop is an error, not a hang.
    let chain = |start: u32, table: &[u32], limit: usize| -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        let mut n = start;
        while n != END {
            if out.len() > limit {
                return Err(bad("a sector chain loops"));
            }
            out.push(n);
            n = *table
                .get(n as usize)
                .ok_or_else(|| bad("a sector chain leaves the FAT"))?;
        }
        Ok(out)
    };
    let read = |start: u32| -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for n in chain(start, &fat, sectors)? {
            out.extend_from_slice(sector(n).ok_or_else(|| bad("sector out of the file"))?);
        }
        Ok(out)
    };
    let dir = read(dir_start)?;
    let entry = |i: usize| dir.get(i * 128..i * 128 + 128);
    let name_of = |e: &[u8]| -> String {
        let len = (u16_at(e, 0x40).unwrap_or(0) as usize).min(64);
        let units: Vec<u16> = (0..len.saturating_sub(2) / 2)
            .filter_map(|i| u16_at(e, 2 * i))
            .collect();
        String::from_utf16_lossy(&units)
    };
    let root = entry(0).ok_or_else(|| bad("no root entry"))?;
    let wanted = (0..dir.len() / 128)
        .filter_map(entry)
        .filter(|e| e[0x42] == 2)
        .find(|e| matches!(name_of(e).as_str(), "Workbook" | "Book"))
        .ok_or_else(|| "it has no Workbook stream (not an Excel 97–2003 file)".to_string())?;
    let start = u32_at(wanted, 0x74).unwrap_or(END);
    let size = u32_at(wanted, 0x78).unwrap_or(0) as usize;
    let mut data = if (size as u64) < u64::from(cutoff) {
        // Small streams live in the mini stream (the root entry's chain) in mini sectors.
        let mini_stream = read(u32_at(root, 0x74).unwrap_or(END))?;
        let mini_fat: Vec<u32> = read(mini_fat_start)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut out = Vec::new();
        for n in chain(start, &mini_fat, mini_stream.len() / mss)? {
            let at = n as usize * mss;
            out.extend_from_slice(
                mini_stream
                    .get(at..at + mss)
                    .ok_or_else(|| bad("mini sector out of the stream"))?,
            );
        }
        out
    } else {
        read(start)?
    };
    data.truncate(size);
    Ok(data)
}

/// Walks the BIFF records: sheet names from BOUNDSHEET, then per worksheet substream its
/// DIMENSIONS and the position of every cell record.
fn scan_biff(path: &Path, s: &[u8]) -> Result<(), SourceError> {
    let mut names: Vec<(u32, String)> = Vec::new();
    let mut at = 0usize;
    let mut depth = 0u32;
    let mut sheet: Option<(String, Area)> = None;
    while at + 4 <= s.len() {
        let typ = u16_at(s, at).unwrap_or(0);
        let len = u16_at(s, at + 2).unwrap_or(0) as usize;
        let rec_at = at;
        let data = s
            .get(at + 4..at + 4 + len)
            .unwrap_or(&s[(at + 4).min(s.len())..]);
        at += 4 + len;
        match typ {
            // BOF: a worksheet substream starts (nested charts only deepen the nesting).
            0x0809 => {
                depth += 1;
                let kind = u16_at(data, 2).unwrap_or(0);
                if depth == 1 && kind == 0x0010 {
                    let name = names
                        .iter()
                        .find(|(pos, _)| *pos as usize == rec_at)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| format!("sheet {}", names.len()));
                    sheet = Some((name, Area::default()));
                }
            }
            // EOF
            0x000A => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && let Some((name, area)) = sheet.take()
                {
                    area.check(path, &name, "cells' area")?;
                }
            }
            // BOUNDSHEET: stream position, state, type, then the name (8-bit or UTF-16).
            0x0085 if depth == 1 => {
                let pos = u32_at(data, 0).unwrap_or(u32::MAX);
                let cch = data.get(6).copied().unwrap_or(0) as usize;
                let name = match data.get(7) {
                    Some(1) => {
                        let units: Vec<u16> =
                            (0..cch).filter_map(|i| u16_at(data, 8 + 2 * i)).collect();
                        String::from_utf16_lossy(&units)
                    }
                    _ => data
                        .get(8..8 + cch)
                        .map(|b| b.iter().map(|c| *c as char).collect())
                        .unwrap_or_default(),
                };
                names.push((pos, name));
            }
            // DIMENSIONS: the area the sheet declares (calamine reserves it up front).
            0x0200 if depth == 1 => {
                if let Some((name, _)) = &sheet {
                    let (r0, r1, c0, c1) = match len {
                        10 => (
                            u64::from(u16_at(data, 0).unwrap_or(0)),
                            u64::from(u16_at(data, 2).unwrap_or(0)),
                            u64::from(u16_at(data, 4).unwrap_or(0)),
                            u64::from(u16_at(data, 6).unwrap_or(0)),
                        ),
                        _ => (
                            u64::from(u32_at(data, 0).unwrap_or(0)),
                            u64::from(u32_at(data, 4).unwrap_or(0)),
                            u64::from(u16_at(data, 8).unwrap_or(0)),
                            u64::from(u16_at(data, 10).unwrap_or(0)),
                        ),
                    };
                    let mut declared = Area::default();
                    if r1 > r0 && c1 > c0 {
                        declared.add(r0, r1 - r0, c0, c1 - c0);
                    }
                    declared.check(path, name, "declared dimensions")?;
                }
            }
            // Cell records: row and column first. MULRK also ends with its last column.
            // (BLANK and MULBLANK are not loaded by calamine, so they do not count.)
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 | 0x00BD if depth == 1 => {
                if let (Some((_, area)), Some(r), Some(c)) =
                    (sheet.as_mut(), u16_at(data, 0), u16_at(data, 2))
                {
                    let last = if typ == 0x00BD && len >= 2 {
                        u16_at(data, len - 2).unwrap_or(c).max(c)
                    } else {
                        c
                    };
                    area.add(u64::from(r), 1, u64::from(c), u64::from(last - c) + 1);
                }
            }
            _ => {}
        }
    }
    Ok(())
}
