use std::path::Path;
use std::time::Duration;

use super::*;

fn rows(path: &Path, wanted: &[&str]) -> Vec<(u64, Vec<String>)> {
    let mut src = open(path, None, None).unwrap();
    let idx = src.resolve(wanted).unwrap();
    let mut out = Vec::new();
    src.for_each_row(&idx, &mut |r, cells| {
        out.push((r, cells.iter().map(|c| format!("{c:?}")).collect()));
    })
    .unwrap();
    out
}

#[test]
fn csv_semicolon_and_comma_with_accent_insensitive_headers() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    std::fs::write(&a, "CÓDIGO;Saldo\nA1;1,5\n\n;\nB2;3\n").unwrap();
    assert_eq!(
        rows(&a, &[" codigo ", "SALDO"]),
        vec![
            (2, vec!["Text(\"A1\")".into(), "Text(\"1,5\")".into()]),
            (5, vec!["Text(\"B2\")".into(), "Text(\"3\")".into()]),
        ]
    );
    let crlf = dir.path().join("crlf.csv");
    std::fs::write(&crlf, "CÓDIGO;Saldo\r\nA1;1,5\r\n\r\n;\r\nB2;3\r\n").unwrap();
    let lines: Vec<u64> = rows(&crlf, &["codigo", "saldo"])
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(lines, vec![2, 5], "CRLF line numbers");
    let b = dir.path().join("b.csv");
    std::fs::write(&b, "\u{feff}code,\"qty, total\"\nX,\"7\"\nY\n").unwrap();
    let r = rows(&b, &["Code", "qty, total"]);
    assert_eq!(r[0].1, vec!["Text(\"X\")", "Text(\"7\")"]);
    assert_eq!(
        r[1].1,
        vec!["Text(\"Y\")", "Empty"],
        "a ragged row is padded"
    );
}

#[test]
fn windows_1252_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.csv");
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode("CÓDIGO;SALDO_AÇÃO\nPÃO;4\n");
    std::fs::write(&p, &bytes).unwrap();
    let src = open(&p, None, None).unwrap();
    assert_eq!(src.headers, vec!["CÓDIGO", "SALDO_AÇÃO"]);
    assert_eq!(rows(&p, &["codigo", "saldo_acao"])[0].1[0], "Text(\"PÃO\")");
}

#[test]
fn missing_and_duplicate_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    std::fs::write(&p, "Codigo;Saldo;saldo\n1;2;3\n").unwrap();
    let src = open(&p, None, None).unwrap();
    let e = src
        .resolve(&["codigo", "preco", "custo"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"preco\", \"custo\"") && e.contains("\"Codigo\""),
        "{e}"
    );
    let e = src.resolve(&["saldo"]).unwrap_err().to_string();
    assert!(e.contains("more than once"), "{e}");
}

#[test]
fn empty_and_binary_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let e = dir.path().join("e.csv");
    std::fs::write(&e, "").unwrap();
    assert!(matches!(
        open(&e, None, None),
        Err(SourceError::Empty { .. })
    ));
    let g = dir.path().join("g.csv");
    std::fs::write(&g, [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    assert!(open(&g, None, None).is_err());
    let x = dir.path().join("g.xlsx");
    std::fs::write(&x, b"PK\x03\x04 truncated").unwrap();
    let err = open(&x, None, None).err().expect("an error").to_string();
    assert!(err.contains("g.xlsx"), "{err}");
    let o = dir.path().join("g.ods");
    std::fs::write(&o, b"not a spreadsheet").unwrap();
    assert!(open(&o, None, None).is_err());
    let s = dir.path().join("g.xls");
    std::fs::write(&s, b"not a spreadsheet").unwrap();
    assert!(open(&s, None, None).is_err());
}

#[test]
fn xlsx_numbers_stay_numbers_and_sheets_are_picked_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let first = wb.add_worksheet().set_name("Outra").unwrap();
    first.write_string(0, 0, "nada").unwrap();
    let ws = wb.add_worksheet().set_name("Preços").unwrap();
    ws.write_string(1, 1, "Código").unwrap();
    ws.write_string(1, 2, "Saldo").unwrap();
    ws.write_string(2, 1, "A-1").unwrap();
    ws.write_number(2, 2, 12.5).unwrap();
    ws.write_number(4, 1, 789.0).unwrap();
    ws.write_number(4, 2, 3.0).unwrap();
    wb.save(&p).unwrap();
    let mut src = open(&p, None, Some("precos")).unwrap();
    assert_eq!(src.sheet.as_deref(), Some("Preços"));
    let idx = src.resolve(&["codigo", "saldo"]).unwrap();
    let mut got = Vec::new();
    src.for_each_row(&idx, &mut |r, c| {
        got.push((
            r,
            c.to_vec()
                .iter()
                .map(|x| format!("{x:?}"))
                .collect::<Vec<_>>(),
        ))
    })
    .unwrap();
    assert_eq!(
        got,
        vec![
            (
                3,
                vec!["Text(\"A-1\")".to_string(), "Number(12.5)".to_string()]
            ),
            (
                5,
                vec!["Number(789.0)".to_string(), "Number(3.0)".to_string()]
            ),
        ]
    );
    let e = open(&p, None, Some("Estoque"))
        .err()
        .expect("no such sheet")
        .to_string();
    assert!(e.contains("Outra, Preços"), "{e}");
}

#[test]
fn pick_newest_skips_files_still_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("estoque-1.csv");
    let new = dir.path().join("estoque-2.csv");
    std::fs::write(&old, "a\n").unwrap();
    let t = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(t)
        .unwrap();
    std::fs::write(&new, "a\n").unwrap();
    let pattern = dir.path().join("estoque-*.csv");
    let p = pick_newest(pattern.to_str().unwrap(), Duration::from_secs(5)).unwrap();
    assert_eq!(p.path.as_deref(), Some(old.as_path()));
    assert_eq!(p.skipped_unstable, vec![new.clone()]);
    let p = pick_newest(pattern.to_str().unwrap(), Duration::ZERO).unwrap();
    assert_eq!(p.path.as_deref(), Some(new.as_path()));
    let none = pick_newest(dir.path().join("x-*.csv").to_str().unwrap(), Duration::ZERO).unwrap();
    assert!(none.path.is_none());
}

#[test]
fn content_hash_is_stable_and_content_based() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, "x;y\n").unwrap();
    std::fs::write(&b, "x;y\n").unwrap();
    assert_eq!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
    std::fs::write(&b, "x;z\n").unwrap();
    assert_ne!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
}

#[test]
fn a_large_csv_streams() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.csv");
    let mut s = String::from("codigo;saldo\n");
    for i in 0..200_000 {
        s.push_str(&format!("K{i};{}\n", i % 50));
    }
    std::fs::write(&p, s).unwrap();
    let mut src = open(&p, None, None).unwrap();
    let idx = src.resolve(&["codigo", "saldo"]).unwrap();
    let mut last = 0;
    let n = src.for_each_row(&idx, &mut |r, _| last = r).unwrap();
    assert_eq!((n, last), (200_000, 200_001));
}

fn open_err(path: &Path) -> String {
    match open(path, None, None) {
        Ok(src) => match src.resolve(&["codigo"]) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_utf8_file_with_a_stray_byte_is_refused_naming_the_byte_not_read_as_windows_1252() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.csv");
    let mut bytes = "CÓDIGO;SALDO\nAÇÃO-1;4\n".as_bytes().to_vec();
    let at = bytes.len();
    bytes.extend_from_slice(b"B-2;5\xff\n");
    std::fs::write(&p, &bytes).unwrap();
    let err = open_err(&p);
    assert!(err.contains("u.csv: line 3"), "{err}");
    assert!(err.contains("UTF-8 except 1 invalid byte"), "{err}");
    assert!(err.contains(&format!("byte offset {}", at + 5)), "{err}");
    assert!(!err.contains("Ã"), "{err}");
}

#[test]
fn a_header_garbled_by_a_double_conversion_says_the_encoding_looks_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    std::fs::write(&p, "CÃ“DIGO;SALDO\nA;1\n").unwrap();
    let err = open_err(&p);
    assert!(err.contains("lacks the column(s) \"codigo\""), "{err}");
    assert!(err.contains("the file's encoding looks wrong"), "{err}");
    assert!(err.contains("\"CÓDIGO\""), "{err}");
    // A plain missing column gets no such hint.
    std::fs::write(&p, "CÓDIGO_X;SALDO\nA;1\n").unwrap();
    assert!(!open_err(&p).contains("encoding"));
}

#[test]
fn utf16_unicode_text_with_tabs_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Código\tSaldo\r\nAÇÃO-1\t4\r\nB-2\t5\r\n";
    for (name, bom, le) in [
        ("le.txt", true, true),
        ("be.csv", true, false),
        ("nobom.csv", false, true),
    ] {
        let p = dir.path().join(name);
        let mut bytes: Vec<u8> = Vec::new();
        if bom {
            bytes.extend_from_slice(if le { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
        }
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(
            rows(&p, &["codigo", "saldo"]),
            vec![
                (2, vec!["Text(\"AÇÃO-1\")".into(), "Text(\"4\")".into()]),
                (3, vec!["Text(\"B-2\")".into(), "Text(\"5\")".into()]),
            ],
            "{name}"
        );
    }
}

#[test]
fn tab_and_pipe_separated_files_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    for (name, sep) in [
        ("t.csv", "\t"),
        ("p.csv", "|"),
        ("s.csv", ";"),
        ("c.csv", ","),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("Código{sep}Saldo\nA-1{sep}7\n")).unwrap();
        assert_eq!(
            rows(&p, &["codigo", "saldo"]),
            vec![(2, vec!["Text(\"A-1\")".into(), "Text(\"7\")".into()])],
            "{name}"
        );
    }
}

#[test]
fn a_workbook_named_csv_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.csv");
    let x = dir.path().join("w.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    wb.add_worksheet().write_string(0, 0, "Código").unwrap();
    wb.save(&x).unwrap();
    std::fs::copy(&x, &p).unwrap();
    let err = open_err(&p);
    assert!(err.contains("ZIP file (an XLSX or ODS workbook)"), "{err}");
    assert!(err.contains("source.format"), "{err}");
}

/// Rewrites one member of a zip archive with `edit`.
fn patch_zip(path: &Path, member: &str, edit: impl Fn(String) -> String) {
    use std::io::{Read, Write};
    let bytes = std::fs::read(path).unwrap();
    let mut src = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut content = Vec::new();
        f.read_to_end(&mut content).unwrap();
        if name == member {
            content = edit(String::from_utf8(content).unwrap()).into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&content).unwrap();
    }
    std::fs::write(path, out.finish().unwrap().into_inner()).unwrap();
}

#[test]
fn a_malformed_xlsx_cell_reference_names_the_file_sheet_and_cell() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet().set_name("Estoque").unwrap();
    ws.write_string(0, 0, "Código").unwrap();
    ws.write_string(0, 1, "Saldo").unwrap();
    ws.write_string(1, 0, "A-1").unwrap();
    ws.write_number(1, 1, 3.0).unwrap();
    ws.write_string(2, 0, "B-2").unwrap();
    ws.write_number(2, 1, 4.0).unwrap();
    wb.save(&p).unwrap();
    patch_zip(&p, "xl/worksheets/sheet1.xml", |x| {
        x.replace("r=\"B3\"", "r=\"B\"")
    });
    let mut src = open(&p, None, None).unwrap();
    let idx = src.resolve(&["codigo", "saldo"]).unwrap();
    let err = src
        .for_each_row(&idx, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("r.xlsx"), "{err}");
    assert!(err.contains("sheet \"Estoque\", after cell A3"), "{err}");
    assert!(err.contains("malformed"), "{err}");
    assert!(err.contains("save it again as .xlsx"), "{err}");
}

#[test]
fn an_ods_number_cell_that_is_not_a_number_names_the_sheet_and_cell() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.ods");
    let content = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Plan1"><table:table-row><table:table-cell office:value-type="string"><text:p>Código</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Saldo</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell office:value-type="string"><text:p>A-1</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="3,5"><text:p>3,5</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("mimetype", stored).unwrap();
    z.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    z.start_file("content.xml", stored).unwrap();
    z.write_all(content.as_bytes()).unwrap();
    z.finish().unwrap();
    let err = open_err(&p);
    assert!(err.contains("f.ods"), "{err}");
    assert!(err.contains("sheet \"Plan1\", cell B2"), "{err}");
    assert!(err.contains("\"3,5\""), "{err}");
}
