//! CSV sources: delimiter (`;` or `,`) and encoding (UTF-8 or Windows-1252) detected, a UTF-8
//! BOM tolerated, ragged rows padded with empty cells.
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

fn detect_delimiter(header_line: &str) -> u8 {
    let (mut semi, mut comma, mut quoted) = (0usize, 0usize, false);
    for c in header_line.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => semi += 1,
            ',' if !quoted => comma += 1,
            '\t' if !quoted && semi == 0 && comma == 0 => {}
            _ => {}
        }
    }
    // Brazilian spreadsheet exports use ';' (the comma is the decimal separator).
    if semi > 0 && semi >= comma {
        b';'
    } else {
        b','
    }
}

fn decode(bytes: Vec<u8>) -> String {
    let bytes = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(e.as_bytes());
            text.into_owned()
        }
    }
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
        if bytes.contains(&0) {
            return Err(SourceError::Csv {
                path: path.to_path_buf(),
                line: 1,
                message: "this is a binary file, not CSV text".into(),
            });
        }
        let text = decode(bytes);
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
