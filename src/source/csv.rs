//! CSV sources: delimiter (`;`, tab, `|` or `,`) and encoding (UTF-8, UTF-16 or Windows-1252)
//! detected, a UTF-8 BOM tolerated, ragged rows padded with empty cells.
//!
//! The file is read into memory once (an ERP export of a million rows is tens of megabytes) and
//! decoded only when it is not valid UTF-8; records are then parsed one at a time, borrowing from
//! that buffer, so no row is ever copied into an owned table.

use std::path::Path;

use super::{Cell, SourceError};

pub struct CsvBody {
    text: String,
    delimiter: u8,
}

/// The delimiter the header line uses most, outside quotes: `;` (Brazilian exports, where the
/// comma is the decimal separator), tab (Excel's "Unicode text"), `|`, or `,`; ties go in that
/// order, and a header with none of them is one column (`,`).
fn detect_delimiter(header_line: &str) -> u8 {
    const CANDIDATES: [u8; 4] = [b';', b'\t', b'|', b','];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for b in header_line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = CANDIDATES.iter().position(|c| *c == b) {
            counts[i] += 1;
        }
    }
    let mut best = 3;
    for i in 0..4 {
        if counts[i] > counts[best] || (counts[i] == counts[best] && counts[i] > 0 && i < best) {
            best = i;
        }
    }
    CANDIDATES[best]
}

/// Why the bytes are not text we can read, as the sentence after "cannot read FILE: line N:".
struct Undecodable {
    line: u64,
    message: String,
}

/// The file's text: UTF-8 (BOM tolerated), UTF-16 with a BOM or plainly ASCII-in-UTF-16 (Excel's
/// "Unicode text"), or Windows-1252. A file that is UTF-8 except a few bytes is refused naming
/// the first bad byte: decoding it as Windows-1252 would garble every accented header and key.
fn decode(bytes: Vec<u8>) -> Result<String, Undecodable> {
    if let Some(utf16) = utf16_of(&bytes) {
        let (text, had_errors) = utf16.decode_with_bom_removal(&bytes);
        if had_errors {
            return Err(Undecodable {
                line: 1,
                message: format!(
                    "this looks like {} text but is not valid {}; export it again (as UTF-8 CSV if the ERP offers it)",
                    utf16.name(),
                    utf16.name()
                ),
            });
        }
        return Ok(text.into_owned());
    }
    if let Some(magic) = binary_kind(&bytes) {
        return Err(Undecodable {
            line: 1,
            message: magic,
        });
    }
    let bytes = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let bytes = e.into_bytes();
            let (mut valid_multibyte, mut invalid) = (0usize, 0usize);
            let mut first_bad: Option<usize> = None;
            let mut offset = 0usize;
            for chunk in bytes.utf8_chunks() {
                valid_multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
                offset += chunk.valid().len();
                if !chunk.invalid().is_empty() {
                    invalid += 1;
                    first_bad.get_or_insert(offset);
                }
                offset += chunk.invalid().len();
            }
            // Accented letters written as UTF-8 outnumber the bad bytes: a UTF-8 file with
            // stray bytes, not a Windows-1252 one.
            if let Some(at) = first_bad
                && valid_multibyte >= invalid
            {
                let line = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count() as u64;
                return Err(Undecodable {
                    line,
                    message: format!(
                        "the file is UTF-8 except {invalid} invalid byte sequence(s), the first at byte offset {at} (0x{:02X}); fix that line or export the file again as UTF-8 (it was not read as Windows-1252, which would garble its accented text)",
                        bytes[at]
                    ),
                });
            }
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&bytes);
            Ok(text.into_owned())
        }
    }
}

/// UTF-16 by its BOM, or by NUL bytes in every other position of the first characters.
fn utf16_of(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    match bytes {
        [0xFF, 0xFE, ..] => return Some(encoding_rs::UTF_16LE),
        [0xFE, 0xFF, ..] => return Some(encoding_rs::UTF_16BE),
        _ => {}
    }
    let head = &bytes[..bytes.len().min(64) & !1];
    if head.len() < 4 {
        return None;
    }
    let pairs = head.len() / 2;
    let nul_odd = head.chunks(2).filter(|p| p[1] == 0 && p[0] != 0).count();
    let nul_even = head.chunks(2).filter(|p| p[0] == 0 && p[1] != 0).count();
    if nul_odd == pairs {
        Some(encoding_rs::UTF_16LE)
    } else if nul_even == pairs {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
}

/// What a file with NUL bytes is, as a sentence saying what to do.
fn binary_kind(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(
            "this is a ZIP file (an XLSX or ODS workbook), not CSV text; give it its real extension (.xlsx or .ods) or set source.format".into(),
        );
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Some(
            "this is an XLS workbook, not CSV text; give it the .xls extension or set source.format = \"xls\"".into(),
        );
    }
    let at = bytes.iter().position(|b| *b == 0)?;
    Some(format!(
        "this is a binary file, not CSV text (a NUL byte at offset {at}); export the data as CSV (UTF-8 or Windows-1252) or as a spreadsheet with its real extension"
    ))
}

/// The most a CSV source may weigh: it is held in memory whole (about 20 times a million-row
/// export), so a runaway file is refused instead of exhausting the machine.
pub const MAX_CSV_BYTES: u64 = 1024 * 1024 * 1024;

impl CsvBody {
    pub fn open(path: &Path) -> Result<(Vec<String>, CsvBody), SourceError> {
        Self::open_within(path, MAX_CSV_BYTES)
    }

    fn open_within(path: &Path, max_bytes: u64) -> Result<(Vec<String>, CsvBody), SourceError> {
        let io = |e: std::io::Error| SourceError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let too_large = || SourceError::CsvTooLarge {
            path: path.to_path_buf(),
            size_mb: size.div_ceil(1024 * 1024),
            max_mb: max_bytes / (1024 * 1024),
        };
        if size > max_bytes {
            return Err(too_large());
        }
        // The file may grow while it is read: never take more than the cap.
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, max_bytes + 1), &mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > max_bytes {
            return Err(too_large());
        }
        let text = decode(bytes).map_err(|u| SourceError::Csv {
            path: path.to_path_buf(),
            line: u.line,
            message: u.message,
        })?;
        let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if first_line.trim().is_empty() {
            return Err(SourceError::Empty {
                path: path.to_path_buf(),
            });
        }
        let body = CsvBody {
            delimiter: detect_delimiter(first_line),
            text,
        };
        let mut reader = body.reader();
        let mut record = ::csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => {
                return Err(SourceError::Empty {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(csv_error(path, e)),
        }
        let headers = record.iter().map(|h| h.trim().to_string()).collect();
        Ok((headers, body))
    }

    fn reader(&self) -> ::csv::Reader<&[u8]> {
        ::csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(self.text.as_bytes())
    }

    pub fn for_each_row(
        &mut self,
        path: &Path,
        cols: &[usize],
        f: &mut dyn FnMut(u64, &[Cell<'_>]),
    ) -> Result<(), SourceError> {
        let mut reader = self.reader();
        let mut record = ::csv::ByteRecord::new();
        let mut header_seen = false;
        // Line numbers are counted from byte offsets: csv's own counter drifts on CRLF files.
        let bytes = self.text.as_bytes();
        let (mut counted_to, mut line) = (0usize, 1u64);
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(csv_error(path, e)),
            }
            if !header_seen {
                header_seen = true;
                continue;
            }
            // A record's offset can point at the line break (or blank lines) before it.
            let mut start = record.position().map_or(counted_to, |p| p.byte() as usize);
            while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
                start += 1;
            }
            if start > counted_to {
                line += bytes[counted_to..start]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64;
                counted_to = start;
            }
            let mut cells: Vec<Cell<'_>> = Vec::with_capacity(cols.len());
            for &c in cols {
                let cell = match record.get(c) {
                    None => Cell::Empty,
                    Some(raw) => {
                        // The buffer is valid UTF-8 and delimiters are ASCII, so fields are too.
                        let s = std::str::from_utf8(raw).unwrap_or("").trim();
                        if s.is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(s)
                        }
                    }
                };
                cells.push(cell);
            }
            f(line, &cells);
        }
    }
}

fn csv_error(path: &Path, e: ::csv::Error) -> SourceError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    SourceError::Csv {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn a_csv_past_the_cap_is_refused_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grande.csv");
        std::fs::write(&p, "CODIGO;SALDO\n".repeat(200_000)).unwrap();
        let err = CsvBody::open_within(&p, 1024 * 1024)
            .err()
            .expect("refused");
        let msg = err.to_string();
        assert!(matches!(err, SourceError::CsvTooLarge { .. }), "{msg}");
        assert!(msg.contains("3 MB, past the 1 MB"), "{msg}");
        assert!(CsvBody::open_within(&p, 4 * 1024 * 1024).is_ok());
    }
}
