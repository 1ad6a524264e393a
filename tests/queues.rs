//! Yampi's queues against the simulator: exports watched to their file, imports posted once and
//! their logs read to the end, and the undocumented variants the client must tolerate.

mod support;

use std::sync::Arc;
use std::time::Duration;

use calamine::Reader;
use rust_decimal::Decimal;
use support::*;
use yampi_sync::shop::ShopClient;
use yampi_sync::shop::queue_watch::{WatchError, export_file, watch};
use yampi_sync::sim::{Catalog, Faults, QueueSettings, sample_catalog};

const POLL: Duration = Duration::from_millis(50);
const PATIENCE: Duration = Duration::from_secs(30);

fn client(env: &Env) -> ShopClient {
    let config = env.write_config();
    let settings = yampi_sync::config::load(&config, None).expect("valid config");
    ShopClient::new(Arc::clone(&settings.stores[0])).expect("client")
}

/// A simulator whose queues take `ms` milliseconds.
async fn env_with_queues(catalog: Catalog, ms: u64, f: impl FnOnce(&mut QueueSettings)) -> Env {
    let env = Env::start(catalog).await;
    let mut s = QueueSettings {
        queue_secs: Duration::from_millis(ms),
        ..QueueSettings::default()
    };
    f(&mut s);
    env.sim.set_queue_settings(s);
    env
}

/// Fails instead of hanging the suite when the code under test never ends.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within a minute"))
}

/// The first sheet's rows as text (numbers in their shortest form).
fn read_sheet(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut wb = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes.to_vec()))
        .expect("a real workbook");
    let range = wb
        .worksheet_range_at(0)
        .expect("a sheet")
        .expect("readable");
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// An import file, a genuine BIFF8 `.xls` as the docs ask: `header`, then rows of cells (`None`:
/// a blank cell; prices as numbers, the rest as text).
fn import_file(header: &[String], rows: &[Vec<Option<String>>]) -> Vec<u8> {
    use yampi_sync::xls::XlsCell;
    let cells: Vec<Vec<XlsCell>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(header)
                .map(|(cell, h)| match cell {
                    None => XlsCell::Empty,
                    Some(v) if h.starts_with("preço") => XlsCell::Number(dec(v)),
                    Some(v) => XlsCell::Text(v.clone()),
                })
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precos.xls");
    yampi_sync::xls::write_xls(&path, "SKUs", header, &cells).unwrap();
    std::fs::read(path).unwrap()
}

/// The same as an `.xlsx` (which the simulator refuses unless told otherwise).
fn import_file_xlsx(header: &[String], rows: &[Vec<Option<String>>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if let Some(v) = cell {
                ws.write_string(r as u32 + 1, c as u16, v).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

/// One import row for SKU `id` with these prices (cost, sale, discount), in `header`'s order.
fn price_row(header: &[String], id: Option<u64>, prices: [Option<&str>; 3]) -> Vec<Option<String>> {
    header
        .iter()
        .map(|h| match h.as_str() {
            "id" => id.map(|i| i.to_string()),
            "preço_custo" => prices[0].map(str::to_owned),
            "preço_venda" => prices[1].map(str::to_owned),
            "preço_promocional" => prices[2].map(str::to_owned),
            "sku" => Some("X".into()),
            _ => Some("1".into()),
        })
        .collect()
}

fn sku_ids(catalog: &Catalog) -> Vec<u64> {
    let mut ids: Vec<u64> = catalog
        .products
        .iter()
        .flat_map(|p| p.skus.iter().map(|s| s.id))
        .collect();
    ids.sort();
    ids
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Posts `rows` as an import (the sim hosts the file), watches it, returns its logs.
async fn import(
    env: &Env,
    c: &ShopClient,
    rows: &[Vec<Option<String>>],
) -> Vec<yampi_sync::shop::queues::QueueLine> {
    let header = env.sim.sku_export_header();
    let url = env.sim.host_file("precos.xls", import_file(&header, rows));
    let ticket = c.post_sku_import(&url).await.expect("import posted");
    let id = ticket.queue_id.expect("the import names its queue");
    bounded("watch", watch(c, id, PATIENCE, POLL, None))
        .await
        .expect("finished");
    c.queue_logs(id).await.expect("logs")
}

#[tokio::test]
async fn an_export_is_watched_to_its_file_which_has_the_sku_template_header() {
    let catalog = sample_catalog(4, 3, 5);
    let env = env_with_queues(catalog.clone(), 300, |_| {}).await;
    let c = client(&env);
    let ticket = c.start_sku_export().await.expect("export started");
    assert_eq!(ticket.total, Some(12));
    let id = ticket.queue_id.expect("queue id");
    let mut seen = Vec::new();
    let mut progress = |q: &yampi_sync::shop::queues::QueueState| seen.push(q.total_processed);
    let state = bounded("watch", watch(&c, id, PATIENCE, POLL, Some(&mut progress)))
        .await
        .expect("finished");
    assert!(state.finished());
    assert!(!seen.is_empty());
    let bytes = bounded("file", export_file(&c, &state, POLL))
        .await
        .expect("file");
    assert!(bytes.starts_with(b"PK"), "an xlsx");
    let rows = read_sheet(&bytes);
    let header = &rows[0];
    assert_eq!(header, &env.sim.sku_export_header());
    let mut names = header.clone();
    names.sort();
    let mut expected: Vec<String> = yampi_sync::export_file::columns::SKU_TEMPLATE
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    assert_eq!(names, expected, "the 12 columns of the template");
    assert_eq!(rows.len(), 13, "one row per SKU");
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let first = sku_ids(&catalog)[0];
    let row = rows
        .iter()
        .find(|r| r[col("id")] == first.to_string())
        .unwrap();
    let (_, sale, _) = env.sim.sku_prices(first).unwrap();
    assert_eq!(dec(&row[col("preço_venda")]), sale);
}

#[tokio::test]
async fn a_stock_export_has_one_row_per_sku_of_that_stock_in_either_naming() {
    for variant in [false, true] {
        let catalog = sample_catalog(2, 2, 5);
        let env = env_with_queues(catalog.clone(), 100, |s| {
            s.stock_column_variant = variant;
            s.lying_extension = true;
        })
        .await;
        let c = client(&env);
        let id = c.start_stock_export(2).await.unwrap().queue_id.unwrap();
        let state = bounded("watch", watch(&c, id, PATIENCE, POLL, None))
            .await
            .unwrap();
        let link = state.redirect_url.clone().expect("a redirect_url");
        assert!(link.ends_with(".xls"), "the name lies: {link}");
        let bytes = export_file(&c, &state, POLL).await.unwrap();
        assert!(
            bytes.starts_with(b"PK"),
            "an xlsx body whatever the name says"
        );
        let rows = read_sheet(&bytes);
        let want = if variant {
            ["sku_id", "sku", "estoque", "estoque_minimo"]
        } else {
            ["id_sku", "sku", "quantidade", "quantidade_minima"]
        };
        assert_eq!(rows[0], want);
        assert_eq!(rows.len(), 5);
        let first = sku_ids(&catalog)[0];
        let row = rows.iter().find(|r| r[0] == first.to_string()).unwrap();
        assert_eq!(row[2], env.sim.stock(first, 2).unwrap().to_string());
    }
    let env = Env::start(sample_catalog(1, 1, 5)).await;
    let err = client(&env).start_stock_export(99).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
}

#[tokio::test]
async fn a_link_only_in_the_notifications_is_found_even_when_they_lag() {
    let env = env_with_queues(sample_catalog(2, 2, 5), 100, |s| {
        s.notification_lag = Duration::from_millis(300);
    })
    .await;
    env.sim.set_faults(Faults {
        queue_links_only_in_notifications: true,
        ..Faults::default()
    });
    let c = client(&env);
    let id = c.start_sku_export().await.unwrap().queue_id.unwrap();
    let state = bounded("watch", watch(&c, id, PATIENCE, POLL, None))
        .await
        .unwrap();
    assert_eq!(state.redirect_url, None);
    let bytes = bounded("file", export_file(&c, &state, Duration::from_millis(150)))
        .await
        .expect("found through the notification");
    assert_eq!(read_sheet(&bytes).len(), 5);
    assert!(
        env.sim.count("GET", "/notifications") >= 2,
        "lagging: read again"
    );
}

#[tokio::test]
async fn no_link_anywhere_is_a_clear_error() {
    let env = env_with_queues(sample_catalog(1, 1, 5), 50, |s| {
        s.notification_lag = Duration::from_secs(3_600);
    })
    .await;
    env.sim.set_faults(Faults {
        queue_links_only_in_notifications: true,
        ..Faults::default()
    });
    let c = client(&env);
    let id = c.start_sku_export().await.unwrap().queue_id.unwrap();
    let state = bounded("watch", watch(&c, id, PATIENCE, POLL, None))
        .await
        .unwrap();
    let err = export_file(&c, &state, Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(matches!(err, WatchError::NoFileLink { queue_id } if queue_id == id));
    assert!(err.to_string().contains(&format!("queue {id}")), "{err}");
}

#[tokio::test]
async fn a_queue_that_never_finishes_times_out_naming_it() {
    let env = env_with_queues(sample_catalog(2, 2, 5), 10, |_| {}).await;
    env.sim.set_faults(Faults {
        queue_never_finishes: true,
        ..Faults::default()
    });
    let c = client(&env);
    let id = c.start_sku_export().await.unwrap().queue_id.unwrap();
    let err = bounded(
        "watch",
        watch(&c, id, Duration::from_millis(400), POLL, None),
    )
    .await
    .unwrap_err();
    match &err {
        WatchError::Timeout {
            queue_id,
            sent,
            processed,
            ..
        } => {
            assert_eq!(*queue_id, id);
            assert_eq!(*sent, 4);
            assert!(processed < sent);
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("queue {id}")) && text.contains("of 4"),
        "{text}"
    );
}

#[tokio::test]
async fn import_logs_are_read_across_pages_and_each_line_is_applied() {
    let catalog = sample_catalog(100, 3, 5);
    let env = env_with_queues(catalog.clone(), 100, |_| {}).await;
    let c = client(&env);
    let header = env.sim.sku_export_header();
    let ids = sku_ids(&catalog);
    let rows: Vec<_> = ids
        .iter()
        .take(250)
        .map(|id| price_row(&header, Some(*id), [Some("5"), Some("20.5"), Some("19.9")]))
        .collect();
    let logs = import(&env, &c, &rows).await;
    assert_eq!(logs.len(), 250);
    assert!(
        logs.iter().all(|l| l.ok),
        "{:?}",
        logs.iter().find(|l| !l.ok)
    );
    assert_eq!(
        logs.iter().map(|l| l.line).collect::<Vec<_>>(),
        (1..=250).collect::<Vec<u64>>()
    );
    assert!(env.sim.count("GET", "/logs") >= 3, "three pages of 100");
    assert_eq!(
        env.sim.sku_prices(ids[249]),
        Some((dec("5"), dec("20.5"), dec("19.9")))
    );
    assert_ne!(
        env.sim.sku_prices(ids[250]).unwrap().1,
        dec("20.5"),
        "not in the file"
    );
}

#[tokio::test]
async fn locked_skus_fail_with_the_message_and_a_blank_price_cell_clears_that_price() {
    let catalog = sample_catalog(2, 2, 5);
    let env = env_with_queues(catalog.clone(), 50, |_| {}).await;
    let ids = sku_ids(&catalog);
    env.sim.set_faults(Faults {
        locked_sku_ids: vec![ids[1]],
        ..Faults::default()
    });
    let c = client(&env);
    let header = env.sim.sku_export_header();
    let before = env.sim.sku_prices(ids[1]).unwrap();
    let rows = vec![
        price_row(&header, Some(ids[0]), [Some("5"), Some("20"), None]),
        price_row(&header, Some(ids[1]), [Some("5"), Some("20"), Some("18")]),
        price_row(&header, None, [Some("5"), Some("20"), Some("18")]),
        price_row(&header, Some(999_999), [Some("5"), Some("20"), Some("18")]),
    ];
    let logs = import(&env, &c, &rows).await;
    let by_line = |n: u64| logs.iter().find(|l| l.line == n).unwrap();
    assert!(by_line(1).ok);
    assert_eq!(
        env.sim.sku_prices(ids[0]),
        Some((dec("5"), dec("20"), Decimal::ZERO)),
        "the blank promotional price was cleared"
    );
    assert!(!by_line(2).ok);
    assert!(by_line(2).message.contains("bloqueado"), "{:?}", by_line(2));
    assert_eq!(
        env.sim.sku_prices(ids[1]),
        Some(before),
        "locked: untouched"
    );
    assert!(!by_line(3).ok, "no id");
    assert!(!by_line(4).ok, "unknown id");
}

#[tokio::test]
async fn a_header_that_is_not_the_exports_refuses_the_whole_file() {
    let catalog = sample_catalog(2, 2, 5);
    let env = env_with_queues(catalog.clone(), 50, |_| {}).await;
    let c = client(&env);
    let ids = sku_ids(&catalog);
    let before = env.sim.sku_prices(ids[0]);
    let mut header = env.sim.sku_export_header();
    header.swap(0, 1);
    let row = price_row(&header, Some(ids[0]), [Some("5"), Some("20"), Some("18")]);
    let url = env.sim.host_file("p.xls", import_file(&header, &[row]));
    let id = c.post_sku_import(&url).await.unwrap().queue_id.unwrap();
    bounded("watch", watch(&c, id, PATIENCE, POLL, None))
        .await
        .unwrap();
    let logs = c.queue_logs(id).await.unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        !logs[0].ok && logs[0].message.contains("colunas"),
        "{logs:?}"
    );
    assert_eq!(env.sim.sku_prices(ids[0]), before, "nothing applied");
}

#[tokio::test]
async fn an_xlsx_import_is_refused_by_default_and_an_unfetchable_file_applies_nothing() {
    let catalog = sample_catalog(2, 2, 5);
    let env = env_with_queues(catalog.clone(), 50, |_| {}).await;
    let c = client(&env);
    let ids = sku_ids(&catalog);
    let before = env.sim.sku_prices(ids[0]);
    let header = env.sim.sku_export_header();
    let row = price_row(&header, Some(ids[0]), [Some("5"), Some("20"), Some("18")]);
    let url = env.sim.host_file(
        "p.xlsx",
        import_file_xlsx(&header, std::slice::from_ref(&row)),
    );
    let id = c.post_sku_import(&url).await.unwrap().queue_id.unwrap();
    bounded("watch", watch(&c, id, PATIENCE, POLL, None))
        .await
        .unwrap();
    let logs = c.queue_logs(id).await.unwrap();
    assert!(
        logs.len() == 1 && !logs[0].ok && logs[0].message.contains(".xls"),
        "{logs:?}"
    );
    assert_eq!(env.sim.sku_prices(ids[0]), before, "nothing applied");
    env.sim.set_faults(Faults {
        import_fetch_fails: true,
        ..Faults::default()
    });
    let logs = import(&env, &c, &[row]).await;
    assert!(logs.len() == 1 && !logs[0].ok, "{logs:?}");
    assert!(logs[0].message.contains("baixar"), "{logs:?}");
    assert_eq!(env.sim.sku_prices(ids[0]), before, "nothing applied");
}

#[tokio::test]
async fn an_import_answer_without_a_queue_id_is_found_in_the_queue_list() {
    let catalog = sample_catalog(2, 2, 5);
    let env = env_with_queues(catalog.clone(), 50, |_| {}).await;
    env.sim.set_faults(Faults {
        import_without_queue_id: true,
        log_line_as_number: true,
        log_message_as_string: true,
        ..Faults::default()
    });
    let c = client(&env);
    // An older queue that must not be taken for the import.
    let older = c.start_sku_export().await.unwrap().queue_id.unwrap();
    let since = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let since_after_older = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert!(since_after_older > since);
    let ids = sku_ids(&catalog);
    let header = env.sim.sku_export_header();
    let row = price_row(&header, Some(ids[0]), [Some("5"), Some("20"), Some("18")]);
    let url = env.sim.host_file("p.xls", import_file(&header, &[row]));
    let ticket = c.post_sku_import(&url).await.unwrap();
    assert_eq!(ticket.queue_id, None);
    let found = c.queues_since(&since_after_older).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_ne!(found[0].id, older);
    assert_eq!(found[0].title.as_deref(), Some("Importando SKUs"));
    bounded("watch", watch(&c, found[0].id, PATIENCE, POLL, None))
        .await
        .unwrap();
    let logs = c.queue_logs(found[0].id).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert!(
        logs[0].ok && logs[0].line == 1 && logs[0].message == "SKU atualizado",
        "{logs:?}"
    );
    assert_eq!(c.queues_since(&since).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_import_whose_connection_drops_is_an_unknown_outcome_posted_exactly_once() {
    let env = env_with_queues(sample_catalog(2, 2, 5), 50, |s| {
        s.import_accepts_xlsx = true
    })
    .await;
    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    let c = client(&env);
    let url = env.sim.host_file("p.xls", b"whatever".to_vec());
    let err = bounded("post", c.post_sku_import(&url)).await.unwrap_err();
    match &err {
        yampi_sync::shop::ApiError::Exhausted { maybe_applied, .. } => {
            assert!(*maybe_applied, "{err}")
        }
        other => panic!("{other}"),
    }
    assert_eq!(env.sim.import_posts(), 1);
    assert_eq!(env.sim.count("POST", "catalog/skus/import"), 1);
    // A 5xx is not resent either.
    env.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    env.sim.clear_requests();
    assert!(c.post_sku_import(&url).await.is_err());
    assert_eq!(env.sim.count("POST", "catalog/skus/import"), 1);
}

#[tokio::test]
async fn an_xls_export_is_a_genuine_biff8_file_with_the_template_header() {
    let env = env_with_queues(sample_catalog(3, 2, 5), 100, |s| {
        s.format = yampi_sync::sim::FileFormat::Xls;
    })
    .await;
    let c = client(&env);
    let id = c.start_sku_export().await.unwrap().queue_id.unwrap();
    let state = bounded("watch", watch(&c, id, PATIENCE, POLL, None))
        .await
        .unwrap();
    assert!(state.redirect_url.as_deref().unwrap().ends_with(".xls"));
    let bytes = export_file(&c, &state, POLL).await.unwrap();
    assert!(bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]), "BIFF8");
    let rows = read_sheet(&bytes);
    assert_eq!(rows[0], env.sim.sku_export_header());
    assert_eq!(rows.len(), 7);
}

#[tokio::test]
async fn an_oversized_file_is_refused_without_reading_it_all() {
    let env = Env::start(sample_catalog(1, 1, 5)).await;
    let c = client(&env);
    let url = env.sim.host_file("big.xlsx", vec![b'x'; 4096]);
    assert_eq!(c.download(&url).await.unwrap().len(), 4096);
    let err = c.download_with_cap(&url, 1000).await.unwrap_err();
    assert!(err.to_string().contains("exceeded 1000 bytes"), "{err}");
    let missing = format!(
        "{}/files/nothing/here.xlsx",
        env.sim.base_url().trim_end_matches("/v2")
    );
    assert_eq!(c.download(&missing).await.unwrap_err().status(), Some(404));
}
