//! The run report a merchant reads, read back with calamine: Portuguese by default, times in the
//! config's zone, numbers as numbers, product and variation names, the cell text beside the
//! value used, the store's value as "old" on a first run, no row for an unchanged field, the
//! batch-edit sheet.

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook};
use support::prices::*;
use support::*;
use yampi_sync::pipeline::RunOptions;
use yampi_sync::report::RunReport;
use yampi_sync::sim::Catalog;

/// The env's config without `language`: the default, Portuguese.
fn portuguese_config(env: &Env) -> std::path::PathBuf {
    let config = env.write_config();
    let text = env.config_text(true).replace("language = \"en\"\n", "");
    assert!(!text.contains("language"));
    std::fs::write(&config, text).unwrap();
    config
}

async fn run_portuguese(env: &Env, opts: RunOptions) -> (i32, RunReport) {
    let (code, mut reports) = open_config(&portuguese_config(env)).run(&opts).await;
    (code, reports.remove(0))
}

fn sheet(path: &Path, name: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap();
    let range = wb
        .worksheet_range(name)
        .unwrap_or_else(|e| panic!("sheet {name}: {e}"));
    range.rows().map(|r| r.to_vec()).collect()
}

fn sheet_names(path: &Path) -> Vec<String> {
    let wb: Xlsx<_> = open_workbook(path).unwrap();
    wb.sheet_names()
}

fn texts(row: &[Data]) -> Vec<String> {
    row.iter().map(|c| c.to_string()).collect()
}

/// The Summary value beside `label`.
fn summary_value(rows: &[Vec<Data>], label: &str) -> Data {
    rows.iter()
        .find(|r| r.first().is_some_and(|c| *c == label))
        .unwrap_or_else(|| panic!("no summary row {label}"))[1]
        .clone()
}

/// The workbook's styles: the number formats its cells use.
fn styles_xml(path: &Path) -> String {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    zip.by_name("xl/styles.xml")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// 6 products × 2 SKUs in one logistics stock: a SKU's `total_in_stock` is its quantity there.
fn one_stock_catalog() -> Catalog {
    let mut c = yampi_sync::sim::sample_catalog(6, 2, 5);
    c.stocks.truncate(1);
    for p in &mut c.products {
        for s in &mut p.skus {
            s.stocks.truncate(1);
        }
    }
    // Never 12: the test's first SKU changes to 12.
    c.products[0].skus[0].stocks[0].quantity = 30;
    c
}

const ONE_STOCK_MAPPING: &str = r#"
match = "sku"
key = "Código"
decimal = "comma"

[stock]
stocks = { "1" = "Saldo Loja" }
min_quantity = 0
missing = "keep"
"#;

#[tokio::test]
async fn a_first_stock_run_reports_in_portuguese_with_names_cell_text_and_the_stores_value() {
    let catalog = one_stock_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.mapping = ONE_STOCK_MAPPING.into();
    let skus: Vec<_> = catalog.products.iter().flat_map(|p| &p.skus).collect();
    // SKU 0: "12,0" (a decimal-comma whole number); SKU 1: what the store holds already (no
    // change); every other: one more than the store holds.
    let mut feed = String::from("Código;Saldo Loja\n");
    for (i, s) in skus.iter().enumerate() {
        let store = s.stocks[0].quantity;
        let cell = match i {
            0 => "12,0".to_string(),
            1 => store.to_string(),
            _ => (store + 1).to_string(),
        };
        feed.push_str(&format!("{};{cell}\n", s.sku));
    }
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    // The summary line is Portuguese too.
    let line = report.summary_line();
    assert!(
        line.contains("linhas lidas") && line.contains("saída 0"),
        "{line}"
    );
    let path = report.report_path.clone().expect("a report");
    assert_eq!(
        sheet_names(&path),
        [
            "Resumo",
            "Alterações",
            "Linhas rejeitadas",
            "Chaves sem correspondência"
        ]
    );

    let changes = sheet(&path, "Alterações");
    assert_eq!(
        texts(&changes[0]),
        [
            "chave",
            "produto",
            "variação",
            "id do SKU",
            "id do produto",
            "campo",
            "texto da célula",
            "anterior",
            "anterior é",
            "novo",
            "resultado"
        ]
    );
    // SKU 1 did not change: no row for it, though its stock was sent with its product's.
    assert_eq!(changes.len() - 1, skus.len() - 1, "{changes:?}");
    assert!(
        !changes.iter().any(|r| r[0].to_string() == skus[1].sku),
        "no row for an unchanged value"
    );
    let first = changes
        .iter()
        .find(|r| r[0].to_string() == skus[0].sku)
        .expect("SKU 0's row");
    assert_eq!(first[1].to_string(), skus[0].title, "the product name");
    assert_eq!(first[2].to_string(), "Tamanho: P", "the variation");
    assert_eq!(first[3], Data::Float(skus[0].id as f64), "ids are numbers");
    assert_eq!(first[5].to_string(), "estoque (depósito 1)");
    assert_eq!(first[6].to_string(), "12,0", "the cell text as read");
    assert_eq!(
        first[7],
        Data::Float(skus[0].stocks[0].quantity as f64),
        "old: the store's quantity on a first run"
    );
    assert_eq!(first[8].to_string(), "valor da loja");
    assert_eq!(first[9], Data::Float(12.0), "the value used, a number");
    assert_eq!(first[10].to_string(), "aplicado");

    let summary = sheet(&path, "Resumo");
    assert_eq!(texts(&summary[0]), ["Campo", "Valor"]);
    assert_eq!(summary_value(&summary, "Tipo").to_string(), "estoque");
    assert_eq!(
        summary_value(&summary, "Linhas lidas"),
        Data::Float(skus.len() as f64),
        "counts are numbers"
    );
    assert_eq!(summary_value(&summary, "Código de saída"), Data::Float(0.0));
    // Times in the config's zone, to the second, the zone named.
    let local = report
        .started_at
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .format("%d/%m/%Y %H:%M:%S (America/Sao_Paulo)")
        .to_string();
    assert_eq!(summary_value(&summary, "Início").to_string(), local);
    // The file name stays the UTC timestamp.
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        name,
        format!("{}.xlsx", report.started_at.format("%Y%m%dT%H%M%S%.3fZ"))
    );

    // A second run with the same values for SKU 0 but 13 for it now: old is what was pushed.
    let feed2 = feed.replacen("12,0", "13", 1);
    env.write_feed("estoque-2.csv", &feed2);
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let changes = sheet(report.report_path.as_ref().unwrap(), "Alterações");
    assert_eq!(changes.len(), 2, "only SKU 0 changed: {changes:?}");
    assert_eq!(changes[1][7], Data::Float(12.0));
    assert_eq!(
        changes[1][8].to_string(),
        "último valor enviado por este job"
    );
}

#[tokio::test]
async fn a_first_price_run_lists_only_changed_fields_with_the_stores_value_as_old() {
    let mut catalog = yampi_sync::sim::sample_catalog(3, 2, 7);
    // The first SKU: cost 10, sale 100, no promotion (discount = sale), so 1.234,50 passes.
    {
        let s = &mut catalog.products[0].skus[0];
        s.price_cost = d("10");
        s.price_sale = d("100");
        s.price_discount = d("100");
    }
    let mapping = price_mapping(
        "comma",
        "price_sale = \"Preço\"\nprice_discount = \"Promoção\"\nprice_cost = \"Custo\"\nmax_change_pct = 5000\n",
    );
    let env = price_env(&catalog, &mapping).await;
    let skus: Vec<_> = catalog.products.iter().flat_map(|p| &p.skus).collect();
    let comma = |d: rust_decimal::Decimal| format!("{d:.2}").replace('.', ",");
    // Every SKU: its sale price one real higher, its discount and cost as the store has them.
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |i| {
            let s = skus[i];
            let sale = if i == 0 {
                " 1.234,50 ".to_string()
            } else {
                comma(s.price_sale + rust_decimal::Decimal::ONE)
            };
            (sale, comma(s.price_discount), comma(s.price_cost))
        }),
    );
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let path = report.report_path.clone().unwrap();
    let changes = sheet(&path, "Alterações");
    assert_eq!(
        changes.len() - 1,
        skus.len(),
        "one row per SKU, for the sale price only: {changes:?}"
    );
    assert!(
        changes[1..].iter().all(|r| r[5] == "preço de venda"),
        "discount and cost did not change: {changes:?}"
    );
    let first = changes
        .iter()
        .find(|r| r[0].to_string() == skus[0].sku)
        .unwrap();
    assert_eq!(first[6].to_string().trim(), "1.234,50", "the cell as read");
    assert_eq!(first[9], Data::Float(1234.5), "money is a number");
    let store_sale: f64 = format!("{}", skus[0].price_sale).parse().unwrap();
    assert_eq!(first[7], Data::Float(store_sale), "old: the store's price");
    assert_eq!(first[8].to_string(), "valor da loja");
    assert_eq!(first[1].to_string(), skus[0].title);
    assert!(
        styles_xml(&path).contains(r##"formatCode="#,##0.00""##),
        "money has the money format"
    );
}

#[tokio::test]
async fn a_batch_edit_report_says_what_was_asked_and_which_products() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog).await;
    env.kind = "batch_edit".into();
    env.schedule = "*/10 * * * *".into();
    env.job_extra = r#"edit = { attribute = "price_sale", operation_type = "decrement", value_type = "percent", value = 20, restrictions = { include = { products_ids = [1000, 1001] }, exclude = { brands_ids = [3] } } }"#.into();
    let opts = RunOptions {
        now: Some("2026-12-01T12:03:00Z".parse().unwrap()),
        ..RunOptions::default()
    };
    let (code, report) = run_portuguese(&env, opts).await;
    assert_eq!(code, 0, "{}", report.message);
    let path = report.report_path.clone().unwrap();
    assert_eq!(sheet_names(&path), ["Resumo", "Edição em lote"]);
    let edit = sheet(&path, "Edição em lote");
    let value = |label: &str| summary_value(&edit, label).to_string();
    assert_eq!(value("Campo editado"), "preço de venda");
    assert_eq!(value("Operação"), "diminuir");
    assert_eq!(value("Valor"), "20");
    assert_eq!(value("Tipo de valor"), "por cento");
    assert_eq!(value("Ocorrência"), "2026-12-01T09:00:00-03:00");
    let covered: Vec<String> = edit
        .iter()
        .filter(|r| r[0] == "Produtos abrangidos")
        .map(|r| r[1].to_string())
        .collect();
    assert_eq!(
        covered,
        [
            "somente produtos: 1000, 1001",
            "todos exceto marcas: 3",
            "por filtro (a loja escolhe os produtos)"
        ]
    );
    assert!(value("Requisição enviada").contains("\"products_ids\":[1000,1001]"));
    // The Summary says it too.
    let summary = sheet(&path, "Resumo");
    assert_eq!(
        summary_value(&summary, "Campo editado").to_string(),
        "preço de venda"
    );
    assert_eq!(
        summary_value(&summary, "Tipo").to_string(),
        "edição em lote"
    );
}

#[tokio::test]
async fn english_reports_keep_english_names() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (3, 4)));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let path = report.report_path.clone().unwrap();
    assert_eq!(
        sheet_names(&path),
        ["Summary", "Changes", "Rejected rows", "Unmatched keys"]
    );
    let summary = sheet(&path, "Summary");
    let started = summary_value(&summary, "Started").to_string();
    let want = report
        .started_at
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .format("%Y-%m-%d %H:%M:%S (America/Sao_Paulo)")
        .to_string();
    assert_eq!(started, want);
    let changes = sheet(&path, "Changes");
    assert_eq!(changes[0][1].to_string(), "product");
    // Two stocks: a first push reads each stock's export for "old".
    assert!(matches!(changes[1][7], Data::Float(_)), "{:?}", changes[1]);
    assert_eq!(changes[1][8].to_string(), "the store's value");
}

/// (SKU id, stock id) → what the simulator's store holds now, for every SKU of `catalog`.
fn held(env: &Env, catalog: &Catalog) -> HashMap<(u64, u64), i64> {
    let mut out = HashMap::new();
    for (_, sku, _) in all_skus(catalog) {
        for stock in [1, 2] {
            out.insert(
                (sku, stock),
                env.sim.stock(sku, stock).expect("a stock row"),
            );
        }
    }
    out
}

const STOCK_EXPORTS: &str = "/catalog/stocks/export-skus";

#[tokio::test]
async fn a_first_run_in_a_store_with_several_stocks_shows_each_stocks_value_as_old() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let before = held(&env, &catalog);
    // Stock 1 as the store holds it, stock 2 one more.
    let feed = feed_for(&catalog, |_, s| (before[&(s, 1)], before[&(s, 2)] + 1));
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(
        env.sim.count("GET", STOCK_EXPORTS),
        2,
        "one export per mapped stock"
    );
    let changes = sheet(report.report_path.as_ref().unwrap(), "Alterações");
    // Stock 1 held the quantities already: no row for them (sent all the same, with their
    // product). The min quantities the store held otherwise (the mapping says 0) have rows.
    let (quantities, mins): (Vec<_>, Vec<_>) = changes[1..]
        .iter()
        .partition(|r| r[5].to_string().starts_with("estoque ("));
    assert_eq!(quantities.len(), before.len() / 2, "{changes:?}");
    for row in &mins {
        assert!(
            row[5].to_string().starts_with("estoque mínimo ("),
            "{row:?}"
        );
        assert!(matches!(row[7], Data::Float(m) if m > 0.0), "{row:?}");
        assert_eq!(row[8].to_string(), "valor da loja");
        assert_eq!(row[9], Data::Float(0.0));
    }
    for row in quantities {
        let Data::Float(sku) = row[3] else {
            panic!("a SKU id: {row:?}")
        };
        let was = before[&(sku as u64, 2)];
        assert_eq!(row[5].to_string(), "estoque (depósito 2)", "{row:?}");
        assert_eq!(row[7], Data::Float(was as f64), "old: the store's, {row:?}");
        assert_eq!(row[8].to_string(), "valor da loja");
        assert_eq!(row[9], Data::Float((was + 1) as f64));
        assert_eq!(row[10].to_string(), "aplicado");
    }
    assert_eq!(
        env.writes(),
        catalog.products.len(),
        "every product sent once"
    );
    assert_stock(&env, &catalog, |_, s| {
        (before[&(s, 1)], before[&(s, 2)] + 1)
    });

    // Later runs compare with what was pushed, and read no export.
    let first = all_skus(&catalog)[0].1;
    let feed2 = feed_for(&catalog, |_, s| {
        let more = if s == first { 5 } else { 0 };
        (before[&(s, 1)] + more, before[&(s, 2)] + 1)
    });
    env.write_feed("estoque-2.csv", &feed2);
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.count("GET", STOCK_EXPORTS), 2, "no export again");
    let changes = sheet(report.report_path.as_ref().unwrap(), "Alterações");
    assert_eq!(changes.len(), 2, "one change: {changes:?}");
    assert_eq!(changes[1][7], Data::Float(before[&(first, 1)] as f64));
    assert_eq!(
        changes[1][8].to_string(),
        "último valor enviado por este job"
    );
}

#[tokio::test]
async fn a_stock_export_that_cannot_be_had_leaves_old_unknown_and_the_run_goes_on() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.job_extra = "queue_timeout = \"1s\"\n".into();
    env.sim.set_faults(yampi_sync::sim::Faults {
        queue_never_finishes: true,
        ..Default::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (3, 4)));
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(env.sim.count("GET", STOCK_EXPORTS) >= 1);
    assert_stock(&env, &catalog, |_, _| (3, 4));
    let changes = sheet(report.report_path.as_ref().unwrap(), "Alterações");
    assert!(changes.len() > 1);
    for row in &changes[1..] {
        assert_eq!(row[7], Data::Empty, "{row:?}");
        assert_eq!(row[8].to_string(), "desconhecido");
        assert_eq!(row[10].to_string(), "aplicado");
    }
}

#[tokio::test]
async fn rejected_rows_and_unmatched_keys_give_their_reasons_in_the_reports_language() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let skus = all_skus(&catalog);
    let (bad, dup) = (&skus[0].2, &skus[1].2);
    // SKU 0's Saldo Loja reads "doze"; SKU 1 comes again with another value; one key is unknown.
    let mut feed: String = feed_for(&catalog, |_, _| (3, 4))
        .lines()
        .map(|line| {
            let mut cells: Vec<&str> = line.split(';').collect();
            if cells[0] == bad.as_str() {
                cells[2] = "doze";
            }
            cells.join(";") + "\n"
        })
        .collect();
    feed.push_str(&format!("{dup};x;5;4\nSEM-CADASTRO;x;1;1\n"));
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 4, "{}", report.summary_line());
    let path = report.report_path.clone().unwrap();
    let rejected = sheet(&path, "Linhas rejeitadas");
    let reasons: Vec<String> = rejected[1..].iter().map(|r| r[4].to_string()).collect();
    assert!(
        reasons.contains(&format!("não é um número (chave {bad})")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("chave repetida com valores diferentes (linhas ")),
        "{reasons:?}"
    );
    let unmatched = sheet(&path, "Chaves sem correspondência");
    assert_eq!(unmatched[1][0].to_string(), "SEM-CADASTRO");
    assert_eq!(
        unmatched[1][2].to_string(),
        "nenhum SKU da loja tem este sku"
    );
    // The console's first lines say the same, in the same language.
    let lines = report.reason_lines(10).join("\n");
    assert!(lines.contains("não é um número (chave"), "{lines}");
    assert!(lines.contains("nenhum SKU da loja tem este sku"), "{lines}");
    // The run record and the log keep the English text.
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.reason.en() == format!("not a number (key {bad})")),
        "{:?}",
        report.rejected
    );
}

#[test]
fn an_unknown_language_is_refused_naming_the_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "state_dir = \"s\"\nlanguage = \"fr\"\n[[store]]\nname = \"s\"\nalias = \"a\"\nuser_token = \"t\"\nuser_secret_key = \"k\"\n",
    )
    .unwrap();
    let err = yampi_sync::config::load(&config, None)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("`language` \"fr\"") && err.contains("\"pt-BR\", \"en\""),
        "{err}"
    );
    // A typo gets the nearest key.
    std::fs::write(
        &config,
        "state_dir = \"s\"\nlangauge = \"en\"\n[[store]]\nname = \"s\"\nalias = \"a\"\nuser_token = \"t\"\nuser_secret_key = \"k\"\n",
    )
    .unwrap();
    let err = yampi_sync::config::load(&config, None)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("did you mean `language`?"), "{err}");
}

#[tokio::test]
async fn a_write_that_may_have_landed_is_reported_as_unknown_never_as_applied_or_refused() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.max_retries = 0;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (3, 4)));
    // The store applies each stocks/sync and drops the connection before answering.
    env.sim.set_faults(yampi_sync::sim::Faults {
        apply_then_drop_rate: 1.0,
        ..yampi_sync::sim::Faults::default()
    });
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 3, "the store stopped answering: {}", report.message);
    let unknown = report.unknown_outcomes();
    assert!(unknown >= 1, "{:?}", report.changes.first());
    assert!(
        report
            .changes
            .iter()
            .all(|c| !matches!(c.outcome, yampi_sync::report::Outcome::Applied)),
        "nothing counted as applied"
    );
    let line = report.summary_line();
    assert!(
        line.contains(&format!("{unknown} com resultado desconhecido")),
        "{line}"
    );
    let path = report.report_path.clone().unwrap();
    let changes = sheet(&path, "Alterações");
    let outcomes: Vec<String> = changes[1..].iter().map(|r| r[10].to_string()).collect();
    let shown = outcomes
        .iter()
        .filter(|o| o.starts_with("resultado desconhecido: "))
        .count();
    assert_eq!(shown as u64, unknown, "{outcomes:?}");
    // Those not sent after the stop are known not applied: "falhou".
    assert!(
        outcomes
            .iter()
            .all(|o| o.starts_with("resultado desconhecido: ") || o.starts_with("falhou: ")),
        "{outcomes:?}"
    );
    let summary = sheet(&path, "Resumo");
    assert_eq!(
        summary_value(&summary, "Resultados desconhecidos"),
        Data::Float(unknown as f64)
    );
}

#[tokio::test]
async fn standard_results_are_in_portuguese_in_the_summary_and_english_in_the_run_record() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (3, 4)));
    let dry = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let (_, report) = run_portuguese(&env, dry).await;
    let line = report.summary_line();
    assert!(
        line.contains("simulação: ") && line.contains("requisições stocks/sync planejadas"),
        "{line}"
    );
    let path = report.report_path.clone().unwrap();
    let result = summary_value(&sheet(&path, "Resumo"), "Resultado").to_string();
    assert!(result.starts_with("simulação: "), "{result}");

    let (code, first) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0, "{}", first.summary_line());
    let (code, again) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 0);
    assert!(again.skipped);
    let line = again.summary_line();
    assert!(
        line.contains("não mudou desde a última sincronização completa; nada a fazer"),
        "{line}"
    );
    // What the run record and `status` keep stays the English sentence of the log.
    assert!(
        again
            .message
            .contains("is unchanged since the last complete sync"),
        "{}",
        again.message
    );
}

#[tokio::test]
async fn a_guard_that_stops_the_job_says_why_in_the_reports_language() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    // Every SKU to zero: more than max_zeroed_pct (30 %).
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (0, 0)));
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 3, "{}", report.summary_line());
    assert_eq!(env.writes(), 0, "nothing sent");
    let n = all_skus(&catalog).len();
    let line = report.summary_line();
    assert!(
        line.contains(&format!(
            "proteção: {n} de {n} SKUs encontrados (100%) ficariam com estoque zero (max_zeroed_pct = 30); nada foi enviado"
        )),
        "{line}"
    );
    let path = report.report_path.clone().unwrap();
    let result = summary_value(&sheet(&path, "Resumo"), "Resultado").to_string();
    assert!(result.starts_with("proteção: "), "{result}");
    // The log and the run record keep the English sentence.
    assert!(
        report
            .message
            .starts_with(&format!("guard: {n} of {n} matched SKUs")),
        "{}",
        report.message
    );

    // Keys the store does not know at all: the mapping does not fit, said in Portuguese.
    let keys: String = (0..5).map(|i| format!("X-{i};x;1;1\n")).collect();
    env.write_feed(
        "estoque-2.csv",
        &format!("Código;Descrição;Saldo Loja;Saldo CD\n{keys}"),
    );
    let (code, report) = run_portuguese(&env, RunOptions::default()).await;
    assert_eq!(code, 3, "{}", report.summary_line());
    let line = report.summary_line();
    assert!(
        line.contains("nenhuma das 5 chaves da coluna \"Código\" de ")
            && line.contains("confira `match` e `key` em"),
        "{line}"
    );
}
