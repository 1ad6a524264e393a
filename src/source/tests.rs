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
