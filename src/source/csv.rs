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

impl CsvBody {
    pub fn open(path: &Path) -> Result<(Vec<String>, CsvBody), SourceError> {
        let bytes = std::fs::read(path).map_err(|e| SourceError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
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
