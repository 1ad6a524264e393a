//! `yampi-sync init --from FILE`: a first config and mapping proposed from a sample ERP export.
//!
//! Reads the file's header and first rows, guesses the key column (and what it matches), the
//! quantity columns (one per warehouse when there are several) and the price columns, the decimal
//! style and, for CSV, the encoding and delimiter; writes a commented config and mapping(s) that
//! `check` accepts, never overwriting a file, and says which command to run next. Every guess can
//! be forced with a flag, so scripts need no prompt.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::{EXIT_INVALID, EXIT_OK};
use crate::source::{self, Cell, normalize_header};

/// Rows looked at to guess types and the decimal style.
const SAMPLE_ROWS: usize = 200;

/// What `init` may be told instead of guessing.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub from: PathBuf,
    pub dir: PathBuf,
    pub sheet: Option<String>,
    pub kind: Option<InitKind>,
    pub key: Option<String>,
    pub quantity: Vec<String>,
    pub price: Option<String>,
    pub alias: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitKind {
    Stock,
    Price,
    Both,
}

/// The file as sampled: headers and the first rows as text.
struct Sample {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// For CSV: (encoding, delimiter) as detected.
    csv: Option<(&'static str, char)>,
}

/// What `init` proposes.
#[derive(Debug, PartialEq)]
struct Proposal {
    key: String,
    matches: &'static str,
    quantities: Vec<String>,
    price: Option<String>,
    discount: Option<String>,
    cost: Option<String>,
    decimal: &'static str,
}

pub fn run(opts: &InitOptions) -> i32 {
    match run_inner(opts) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INVALID
        }
    }
}

fn run_inner(opts: &InitOptions) -> Result<(), String> {
    let sample = read_sample(&opts.from, opts.sheet.as_deref())?;
    let proposal = propose(&sample, opts)?;
    let kind = match opts.kind {
        Some(k) => k,
        None => match (proposal.quantities.is_empty(), proposal.price.is_some()) {
            (false, true) => InitKind::Both,
            (false, false) => InitKind::Stock,
            (true, true) => InitKind::Price,
            (true, false) => {
                return Err(format!(
                    "{}: no column looks like a quantity (saldo, estoque, quantidade…) or a price (preço, valor…); name them with --quantity COLUMN or --price COLUMN",
                    opts.from.display()
                ));
            }
        },
    };
    if matches!(kind, InitKind::Stock | InitKind::Both) && proposal.quantities.is_empty() {
        return Err(format!(
            "{}: no column looks like a quantity; name it with --quantity COLUMN (once per warehouse)",
            opts.from.display()
        ));
    }
    if matches!(kind, InitKind::Price | InitKind::Both) && proposal.price.is_none() {
        return Err(format!(
            "{}: no column looks like a sale price; name it with --price COLUMN",
            opts.from.display()
        ));
    }

    let dir = &opts.dir;
    let config_path = dir.join("yampi-sync.toml");
    let stock_path = dir.join("mappings/stock.toml");
    let price_path = dir.join("mappings/price.toml");
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let source =
        std::path::absolute(&opts.from).map_err(|e| format!("{}: {e}", opts.from.display()))?;
    let glob = source_glob(&source);
    let state_dir =
        std::path::absolute(dir.join("state")).map_err(|e| format!("{}: {e}", dir.display()))?;
    files.push((
        config_path.clone(),
        config_text(kind, &glob, opts, &state_dir),
    ));
    if matches!(kind, InitKind::Stock | InitKind::Both) {
        files.push((stock_path, stock_mapping_text(&proposal, &sample)));
    }
    if matches!(kind, InitKind::Price | InitKind::Both) {
        files.push((price_path, price_mapping_text(&proposal, &sample)));
    }
    if let Some((p, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(format!(
            "{} already exists; init never overwrites a file: move it away or choose another folder with --dir",
            p.display()
        ));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        // create_new: a file that appeared meanwhile is still not overwritten.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }

    println!(
        "Read {} ({} sample rows).",
        opts.from.display(),
        sample.rows.len()
    );
    println!(
        "  key: \"{}\" (matches the store's `{}`)",
        proposal.key, proposal.matches
    );
    for q in &proposal.quantities {
        println!("  quantity: \"{q}\"");
    }
    for (what, col) in [
        ("sale price", &proposal.price),
        ("discount price (commented out)", &proposal.discount),
        ("cost (commented out)", &proposal.cost),
    ] {
        if let Some(c) = col {
            println!("  {what}: \"{c}\"");
        }
    }
    println!("  decimal style: {}", proposal.decimal);
    if let Some((enc, delim)) = sample.csv {
        println!("  CSV: {enc}, delimiter '{delim}'");
    }
    for (path, _) in &files {
        println!("Wrote {}", path.display());
    }
    println!(
        "Next: review the files (the alias, the stock ids), then run\n  YAMPI_USER_TOKEN=… YAMPI_USER_SECRET_KEY=… yampi-sync --config {} check",
        config_path.display()
    );
    Ok(())
}

fn read_sample(path: &Path, sheet: Option<&str>) -> Result<Sample, String> {
    let mut opened = source::open(path, None, sheet).map_err(|e| e.to_string())?;
    let headers = opened.headers.clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(format!(
            "{}: the first row (the header) is empty",
            path.display()
        ));
    }
    let cols: Vec<usize> = (0..headers.len()).collect();
    let mut rows = Vec::new();
    opened
        .for_each_row(&cols, &mut |_, cells| {
            if rows.len() < SAMPLE_ROWS {
                rows.push(cells.iter().map(Cell::as_text).collect());
            }
        })
        .map_err(|e| e.to_string())?;
    let csv = (opened.format == source::Format::Csv).then(|| csv_style(path));
    Ok(Sample { headers, rows, csv })
}

/// The encoding and delimiter of a CSV's first line (informational: both are detected at every
/// run).
fn csv_style(path: &Path) -> (&'static str, char) {
    let bytes = std::fs::read(path).unwrap_or_default();
    let encoding = if std::str::from_utf8(&bytes).is_ok() {
        "UTF-8"
    } else {
        "Windows-1252"
    };
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| first.iter().filter(|b| **b == c).count();
    let delimiter = [b';', b'\t', b'|', b',']
        .into_iter()
        .max_by_key(|c| (count(*c), *c == b';'))
        .filter(|c| count(*c) > 0)
        .unwrap_or(b',');
    (encoding, delimiter as char)
}

fn has_word(header: &str, words: &[&str]) -> bool {
    let h = normalize_header(header).replace(['_', '-', '.'], " ");
    h.split_whitespace()
        .any(|w| words.iter().any(|x| w.starts_with(x)))
}

fn column_values(sample: &Sample, col: usize) -> impl Iterator<Item = &str> {
    sample
        .rows
        .iter()
        .filter_map(move |r| r.get(col).map(String::as_str))
        .filter(|v| !v.trim().is_empty())
}

fn looks_numeric(v: &str) -> bool {
    let v = v.trim();
    !v.is_empty()
        && v.chars().all(|c| c.is_ascii_digit() || ".,-".contains(c))
        && v.chars().any(|c| c.is_ascii_digit())
}

fn find(sample: &Sample, wanted: &str) -> Result<String, String> {
    let n = normalize_header(wanted);
    sample
        .headers
        .iter()
        .find(|h| normalize_header(h) == n)
        .cloned()
        .ok_or_else(|| {
            format!(
                "there is no column \"{wanted}\"; the columns are: {}",
                sample.headers.join(", ")
            )
        })
}

fn propose(sample: &Sample, opts: &InitOptions) -> Result<Proposal, String> {
    let numeric = |i: usize| {
        let vals: Vec<&str> = column_values(sample, i).collect();
        !vals.is_empty() && vals.iter().all(|v| looks_numeric(v))
    };
    let (key, matches) = match &opts.key {
        Some(k) => {
            let k = find(sample, k)?;
            let m = if has_word(&k, &["ean", "gtin", "barra", "barcode"]) {
                "barcode"
            } else {
                "sku"
            };
            (k, m)
        }
        None => {
            let by_name =
                |words: &[&str]| sample.headers.iter().find(|h| has_word(h, words)).cloned();
            if let Some(k) = by_name(&["sku", "codigo", "cod", "referencia", "ref"]) {
                (k, "sku")
            } else if let Some(k) = by_name(&["ean", "gtin", "barra", "barcode"]) {
                (k, "barcode")
            } else {
                // The first column whose sampled values are all present and distinct.
                let k = (0..sample.headers.len())
                    .find(|&i| {
                        let vals: Vec<&str> = column_values(sample, i).collect();
                        vals.len() == sample.rows.len()
                            && !vals.is_empty()
                            && vals.iter().collect::<HashSet<_>>().len() == vals.len()
                    })
                    .map(|i| sample.headers[i].clone())
                    .ok_or_else(|| {
                        "no column looks like a product code; name it with --key COLUMN".to_string()
                    })?;
                (k, "sku")
            }
        }
    };
    let quantities: Vec<String> = if opts.quantity.is_empty() {
        (0..sample.headers.len())
            .filter(|&i| sample.headers[i] != key)
            .filter(|&i| {
                has_word(
                    &sample.headers[i],
                    &["saldo", "estoque", "qtd", "qtde", "quant", "disponiv"],
                ) && !has_word(&sample.headers[i], &["min"])
                    && numeric(i)
            })
            .map(|i| sample.headers[i].clone())
            .collect()
    } else {
        opts.quantity
            .iter()
            .map(|q| find(sample, q))
            .collect::<Result<_, _>>()?
    };
    let price_like = |words: &[&str], not: &[&str]| {
        (0..sample.headers.len())
            .filter(|&i| sample.headers[i] != key)
            .find(|&i| {
                has_word(&sample.headers[i], words)
                    && !has_word(&sample.headers[i], not)
                    && numeric(i)
            })
            .map(|i| sample.headers[i].clone())
    };
    let price = match &opts.price {
        Some(p) => Some(find(sample, p)?),
        None => price_like(
            &["preco", "valor", "venda", "price"],
            &["promo", "custo", "cost"],
        ),
    };
    let discount = price_like(&["promo", "oferta", "desconto"], &[]);
    let cost = price_like(&["custo", "cost"], &[]);
    let money_cols: Vec<&String> = quantities.iter().chain(price.iter()).collect();
    let decimal = decimal_style(sample, &money_cols);
    Ok(Proposal {
        key,
        matches,
        quantities,
        price,
        discount,
        cost,
        decimal,
    })
}

/// "comma" when numbers are written `1.234,56` / `12,5`, "dot" for `1,234.56` / `12.5`; comma
/// (the Brazilian default) when the sample does not tell.
fn decimal_style(sample: &Sample, cols: &[&String]) -> &'static str {
    let (mut comma, mut dot) = (0usize, 0usize);
    for col in cols {
        let Some(i) = sample.headers.iter().position(|h| h == *col) else {
            continue;
        };
        for v in column_values(sample, i) {
            let v = v.trim();
            match (v.rfind(','), v.rfind('.')) {
                (Some(c), Some(d)) if c > d => comma += 1,
                (Some(_), Some(_)) => dot += 1,
                (Some(c), None) if v.len() - c - 1 != 3 => comma += 1,
                (None, Some(d)) if v.len() - d - 1 != 3 => dot += 1,
                _ => {}
            }
        }
    }
    if dot > comma { "dot" } else { "comma" }
}

/// `…/estoque-2026-11-30.csv` → `…/estoque-*.csv`: the newest export of the series is read.
fn source_glob(file: &Path) -> String {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let ext = file
        .extension()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let base = stem.trim_end_matches(|c: char| c.is_ascii_digit() || "-_.".contains(c));
    let name = if base.len() < stem.len() && !base.is_empty() {
        format!("{base}-*.{ext}")
    } else {
        file.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string()
    };
    let name = if base.len() < stem.len() && !base.is_empty() && stem[base.len()..].starts_with('_')
    {
        name.replacen("-*", "_*", 1)
    } else {
        name
    };
    file.with_file_name(name).display().to_string()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn config_text(kind: InitKind, glob: &str, opts: &InitOptions, state_dir: &Path) -> String {
    let alias = opts.alias.as_deref().unwrap_or("minha-loja");
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# yampi-sync configuration written by `yampi-sync init --from {}`.\n# Every key is explained in the README (Config reference). Review it, then run `check`.\n",
        opts.from.display()
    );
    let _ = writeln!(
        t,
        "state_dir = {}     # checkpoints and reports; under systemd use \"/var/lib/yampi-sync\"",
        toml_str(&state_dir.display().to_string())
    );
    t.push_str("timezone = \"America/Sao_Paulo\"\n\n[[store]]\nname = \"main\"\n");
    let _ = writeln!(
        t,
        "alias = {}{}",
        toml_str(alias),
        if opts.alias.is_none() {
            "                  # your store's Yampi alias (CHANGE ME)"
        } else {
            ""
        }
    );
    t.push_str("user_token = \"${YAMPI_USER_TOKEN}\"          # read from the environment\nuser_secret_key = \"${YAMPI_USER_SECRET_KEY}\"\n");
    let sheet = opts
        .sheet
        .as_deref()
        .map(|s| format!(", sheet = {}", toml_str(s)))
        .unwrap_or_default();
    let source = format!(
        "source = {{ path = {}{sheet}, settle_ms = 2000 }}   # the newest file of the glob",
        toml_str(glob)
    );
    if matches!(kind, InitKind::Stock | InitKind::Both) {
        let _ = write!(
            t,
            "\n[[job]]\nname = \"estoque\"\nstore = \"main\"\nkind = \"stock\"\nschedule = \"*/10 * * * *\"             # every 10 minutes\n{source}\nmapping = \"mappings/stock.toml\"\n"
        );
    }
    if matches!(kind, InitKind::Price | InitKind::Both) {
        let _ = write!(
            t,
            "\n[[job]]\nname = \"precos\"\nstore = \"main\"\nkind = \"price\"\nschedule = \"0 * * * *\"                # every hour\n{source}\nmapping = \"mappings/price.toml\"\n"
        );
    }
    t
}

fn mapping_head(p: &Proposal, sample: &Sample) -> String {
    let mut t = String::new();
    if let Some((enc, delim)) = sample.csv {
        let _ = writeln!(
            t,
            "# The sample was {enc} with '{delim}' between columns (both are detected at every run)."
        );
    }
    let _ = writeln!(
        t,
        "match = \"{}\"            # which store field the key matches: sku | erp_id | barcode\nkey = {}\ndecimal = \"{}\"          # \"1.234,56\" (comma) or \"1,234.56\" (dot)\n",
        p.matches,
        toml_str(&p.key),
        p.decimal
    );
    t
}

fn stock_mapping_text(p: &Proposal, sample: &Sample) -> String {
    let mut t =
        String::from("# Stock mapping written by `yampi-sync init`: ERP columns → Yampi stock.\n");
    t.push_str(&mapping_head(p, sample));
    t.push_str("[stock]\n");
    if let [one] = p.quantities.as_slice() {
        let _ = writeln!(
            t,
            "quantity = {}\n# stock_id = 1           # which Yampi stock it goes into (default: the one with the lowest priority)",
            toml_str(one)
        );
    } else {
        t.push_str("# One column per warehouse: replace 1, 2, … with your Yampi stock ids (admin: Logística → Estoques).\nstocks = { ");
        let pairs: Vec<String> = p
            .quantities
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{}\" = {}", i + 1, toml_str(c)))
            .collect();
        t.push_str(&pairs.join(", "));
        t.push_str(" }\n");
    }
    t.push_str("# reserve = 0            # safety buffer subtracted before publishing\n# missing = \"keep\"       # SKUs in the store but not in the file: keep | zero\n");
    t
}

fn price_mapping_text(p: &Proposal, sample: &Sample) -> String {
    let mut t = String::from(
        "# Price mapping written by `yampi-sync init`: ERP columns → Yampi prices.\n# A blank cell leaves that price as the store has it.\n",
    );
    t.push_str(&mapping_head(p, sample));
    t.push_str("[price]\n");
    let _ = writeln!(
        t,
        "price_sale = {}",
        toml_str(p.price.as_deref().unwrap_or_default())
    );
    let _ = writeln!(
        t,
        "# price_discount = {}   # the promotional price (a blank cell keeps the store's)",
        toml_str(p.discount.as_deref().unwrap_or("PROMO"))
    );
    let _ = writeln!(
        t,
        "# price_cost = {}       # prices may not go below it",
        toml_str(p.cost.as_deref().unwrap_or("CUSTO"))
    );
    t.push_str("# round_to = \"0.90\"       # round up to the next x.90\nmax_change_pct = 50      # guard: a price moving more than this is refused, not sent\n");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(headers: &[&str], rows: &[&[&str]]) -> Sample {
        Sample {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect(),
            csv: None,
        }
    }

    #[test]
    fn proposes_key_warehouses_and_decimal_style() {
        let s = sample(
            &[
                "Código",
                "Descrição",
                "Saldo Loja",
                "Saldo CD",
                "Preço",
                "Preço Promo",
            ],
            &[
                &["A1", "x", "3", "4", "12,50", "10,00"],
                &["A2", "y", "0", "1", "1.299,90", ""],
            ],
        );
        let p = propose(&s, &InitOptions::default()).unwrap();
        assert_eq!(p.key, "Código");
        assert_eq!(p.matches, "sku");
        assert_eq!(p.quantities, ["Saldo Loja", "Saldo CD"]);
        assert_eq!(p.price.as_deref(), Some("Preço"));
        assert_eq!(p.discount.as_deref(), Some("Preço Promo"));
        assert_eq!(p.decimal, "comma");
    }

    #[test]
    fn dot_decimals_barcodes_and_forced_columns() {
        let s = sample(
            &["EAN", "Qty", "Price"],
            &[&["789", "2", "12.5"], &["790", "3", "1,299.90"]],
        );
        let p = propose(&s, &InitOptions::default()).unwrap();
        assert_eq!((p.key.as_str(), p.matches), ("EAN", "barcode"));
        assert_eq!(p.decimal, "dot");
        assert!(
            p.quantities.is_empty(),
            "`Qty` is not a Portuguese quantity name"
        );
        let forced = InitOptions {
            quantity: vec!["qty".into()],
            ..Default::default()
        };
        assert_eq!(propose(&s, &forced).unwrap().quantities, ["Qty"]);
        let wrong = InitOptions {
            key: Some("Nope".into()),
            ..Default::default()
        };
        assert!(propose(&s, &wrong).unwrap_err().contains("EAN, Qty, Price"));
    }

    #[test]
    fn series_files_become_a_glob() {
        assert_eq!(
            source_glob(Path::new("/srv/erp/estoque-1.csv")),
            "/srv/erp/estoque-*.csv"
        );
        assert_eq!(
            source_glob(Path::new("/srv/erp/estoque_2026-11-30.xlsx")),
            "/srv/erp/estoque_*.xlsx"
        );
        assert_eq!(
            source_glob(Path::new("/srv/erp/estoque.csv")),
            "/srv/erp/estoque.csv"
        );
    }
}
