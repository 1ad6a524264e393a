//! The benchmark's input files: each case makes the ones it reads, so `--case X` works on a
//! fresh machine. Files are written beside their final name and renamed into place, so an
//! interrupted generation never leaves a short file that a later case would take as complete.
//! Also compiled into tests/ux_messages.rs (by path), which checks a fresh dir gets every input.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The inputs, by the name a case asks for.
pub const CSV: &str = "feed-1m.csv";
pub const XLSX: &str = "feed-100k.xlsx";
pub const PRICES: &str = "prices-30k.csv";

/// Writes `dir/name` with `rows` rows unless it is already there; returns its path.
pub fn ensure(dir: &Path, name: &str, rows: u64) -> PathBuf {
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(dir).expect("bench data dir");
    let partial = dir.join(format!(".{name}.{}.partial", std::process::id()));
    match name {
        CSV => write_csv(&partial, rows),
        XLSX => write_xlsx(&partial, rows),
        PRICES => write_prices(&partial, rows),
        other => panic!("unknown bench input {other}"),
    }
    std::fs::rename(&partial, &path).expect("bench input renamed into place");
    path
}

fn write_csv(path: &Path, rows: u64) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "Código;Descrição;Saldo Loja;Saldo CD;Preço").unwrap();
    for i in 0..rows {
        writeln!(
            w,
            "SKU-{i:07};Produto {i} azul M;{};{};{},90",
            i % 50,
            i % 7,
            10 + i % 300
        )
        .unwrap();
    }
    w.flush().unwrap();
}

fn write_xlsx(path: &Path, rows: u64) {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Código", "Descrição", "Saldo Loja", "Saldo CD", "Preço"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for i in 0..rows {
        let r = i as u32 + 1;
        ws.write_string(r, 0, format!("SKU-{i:07}")).unwrap();
        ws.write_string(r, 1, format!("Produto {i} azul M"))
            .unwrap();
        ws.write_number(r, 2, (i % 50) as f64).unwrap();
        ws.write_number(r, 3, (i % 7) as f64).unwrap();
        ws.write_number(r, 4, 10.9 + (i % 300) as f64).unwrap();
    }
    wb.save(path).unwrap();
}

/// Products of 3 SKUs: a third share one new price, a third have three prices, a third have
/// two SKUs sharing and one apart.
fn write_prices(path: &Path, n: u64) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "Código;Preço").unwrap();
    for i in 0..n {
        let product = i / 3;
        let price = match product % 3 {
            0 => 110,
            1 => 110 + i % 3,
            _ => 110 + u64::from(i % 3 == 2),
        };
        writeln!(w, "SKU-{i:07};{price},00").unwrap();
    }
    w.flush().unwrap();
}
