//! Spreadsheet imports: `POST /catalog/skus/import {"file_url": URL}` answers `{queue_id, total}`
//! at once; a background task fetches the URL over HTTP (bounded in time and size) and parses it
//! with calamine (BIFF8 only unless `import_accepts_xlsx`). When the queue's time has come and the
//! file was read, the lines are applied: a header that is not the SKU export's (same names, same
//! order) refuses the whole file; otherwise each data row (`line` from 1) is refused without an
//! `id`, for an unknown or locked id, or has its three prices set as the cells say, **a blank
//! price cell clearing that price** (the worst case the docs allow). A file that cannot be fetched
//! finishes the queue with one error entry and nothing applied.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::exports::sku_header;
use super::queues::{Fetched, SheetCell, Work};
use super::routes::{Ctx, Reply};
use super::store::{State, lock};

/// Largest import file fetched; a larger one fails the queue.
const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

/// `POST /catalog/skus/import`.
pub(super) fn sku_import(cx: &mut Ctx) -> Reply {
    cx.st.queues.import_posts += 1;
    let body: Option<Value> = serde_json::from_slice(&cx.req.body).ok();
    let url = body
        .as_ref()
        .and_then(|b| b.get("file_url"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    let Some(url) = url else {
        return Reply::invalid(BTreeMap::from([(
            "file_url".to_owned(),
            vec!["The file url field is required.".to_owned()],
        )]));
    };
    let fetched: Fetched = Arc::new(Mutex::new(None));
    let owner = cx.caller_token();
    let now = cx.st.now();
    let id = cx.st.queues.create(
        IMPORT_TITLE,
        &owner,
        0,
        now,
        Work::Import(Arc::clone(&fetched)),
    );
    cx.applied = true;
    if cx.st.faults.import_fetch_fails {
        *lock(&fetched) = Some(Err(format!(
            "Não foi possível baixar o arquivo {url}: conexão recusada"
        )));
    } else {
        let accept_xlsx = cx.st.queues.settings.import_accepts_xlsx;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(fetch(url, accept_xlsx, fetched));
            }
            Err(_) => *lock(&fetched) = Some(Err("sem runtime para baixar o arquivo".into())),
        }
    }
    let mut answer = json!({ "total": 0 });
    if !cx.st.faults.import_without_queue_id {
        answer["queue_id"] = json!(id);
    }
    Reply::new(200, answer)
}

async fn fetch(url: String, accept_xlsx: bool, slot: Fetched) {
    let result = tokio::time::timeout(FETCH_TIMEOUT, download(&url))
        .await
        .unwrap_or_else(|_| Err(format!("tempo esgotado ao baixar {url}")))
        .and_then(|bytes| parse(&bytes, accept_xlsx));
    *lock(&slot) = Some(result);
}

async fn download(url: &str) -> Result<Vec<u8>, String> {
    let http = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("Não foi possível baixar o arquivo {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "Não foi possível baixar o arquivo {url}: HTTP {}",
            resp.status().as_u16()
        ));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if buf.len() + chunk.len() > MAX_FILE_BYTES {
            return Err(format!("O arquivo {url} é grande demais"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The first sheet's rows, header first.
pub(super) fn parse(bytes: &[u8], accept_xlsx: bool) -> Result<Vec<Vec<SheetCell>>, String> {
    use calamine::{Data, Reader};
    let biff = bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
    if !biff && !accept_xlsx {
        return Err("Formato de arquivo inválido. Extensões de arquivos aceitas: .xls.".into());
    }
    let mut wb = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| format!("Não foi possível ler a planilha: {e}"))?;
    let range = wb
        .worksheet_range_at(0)
        .ok_or("A planilha não tem nenhuma aba")?
        .map_err(|e| format!("Não foi possível ler a planilha: {e}"))?;
    Ok(range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => SheetCell::Empty,
                    Data::String(s) if s.trim().is_empty() => SheetCell::Empty,
                    Data::String(s) => SheetCell::Text(s.clone()),
                    Data::Float(f) => SheetCell::Number(*f),
                    Data::Int(i) => SheetCell::Number(*i as f64),
                    other => SheetCell::Text(other.to_string()),
                })
                .collect()
        })
        .collect())
}

fn text(c: Option<&SheetCell>) -> Option<String> {
    match c? {
        SheetCell::Text(s) => Some(s.trim().to_owned()),
        SheetCell::Number(n) => Some(n.to_string()),
        SheetCell::Empty => None,
    }
}

/// A price cell: `None` when blank (the price is cleared), `Err` when not a number.
fn price(c: Option<&SheetCell>) -> Result<Option<Decimal>, ()> {
    match c {
        None | Some(SheetCell::Empty) => Ok(None),
        Some(SheetCell::Number(n)) => Decimal::try_from(*n)
            .map(|d| Some(d.round_dp(2)))
            .map_err(|_| ()),
        Some(SheetCell::Text(s)) => s.trim().replace(',', ".").parse().map(Some).map_err(|_| ()),
    }
}

impl super::Simulator {
    /// Each import queue's data lines as read from its file (0 until fetched), oldest first.
    pub fn import_lines(&self) -> Vec<u64> {
        let st = lock(&self.shared().state);
        st.queues
            .queues
            .iter()
            .filter(|q| q.title == IMPORT_TITLE)
            .map(|q| q.total_sent)
            .collect()
    }
}

/// The title of an import's queue.
const IMPORT_TITLE: &str = "Importando SKUs";

pub(super) fn finish_import(
    st: &mut State,
    queue_id: u64,
    rows: Result<Vec<Vec<SheetCell>>, String>,
) {
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            st.queues.log(queue_id, false, 0, e);
            return;
        }
    };
    let expected = sku_header(st.queues.settings.column_seed);
    let mut rows = rows.into_iter();
    let header: Vec<String> = rows
        .next()
        .unwrap_or_default()
        .iter()
        .map(|c| text(Some(c)).unwrap_or_default())
        .collect();
    if header != expected {
        st.queues.log(
            queue_id,
            false,
            0,
            format!(
                "Planilha fora do modelo: as colunas devem ser exatamente {} (recebido: {})",
                expected.join(", "),
                header.join(", ")
            ),
        );
        return;
    }
    let col = |name: &str| expected.iter().position(|c| *c == name);
    let (id_col, cost_col, sale_col, disc_col) = (
        col("id"),
        col("preço_custo"),
        col("preço_venda"),
        col("preço_promocional"),
    );
    let data: Vec<Vec<SheetCell>> = rows.collect();
    if let Some(q) = st.queues.queue_mut(queue_id) {
        q.total_sent = data.len() as u64;
    }
    let at = |row: &[SheetCell], c: Option<usize>| c.and_then(|c| row.get(c)).cloned();
    // Where each SKU sits (product, position): one pass, not a catalog scan per line.
    let place: std::collections::HashMap<u64, (usize, usize)> = st
        .catalog
        .products
        .iter()
        .enumerate()
        .flat_map(|(p, prod)| {
            prod.skus
                .iter()
                .enumerate()
                .map(move |(i, s)| (s.id, (p, i)))
        })
        .collect();
    for (i, row) in data.iter().enumerate() {
        let line = i as u64 + 1;
        let Some(id_text) = text(at(row, id_col).as_ref()) else {
            st.queues
                .log(queue_id, false, line, "O campo id é obrigatório.".into());
            continue;
        };
        let Some(id) = id_text
            .parse::<u64>()
            .ok()
            .or_else(|| {
                id_text
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .filter(|id| place.contains_key(id))
        else {
            st.queues.log(
                queue_id,
                false,
                line,
                format!("SKU {id_text} não encontrado."),
            );
            continue;
        };
        if st.faults.locked_sku_ids.contains(&id) {
            st.queues.log(
                queue_id,
                false,
                line,
                format!("O SKU {id} está bloqueado para edição e não foi atualizado."),
            );
            continue;
        }
        let prices = (
            price(at(row, cost_col).as_ref()),
            price(at(row, sale_col).as_ref()),
            price(at(row, disc_col).as_ref()),
        );
        let (Ok(cost), Ok(sale), Ok(discount)) = prices else {
            st.queues
                .log(queue_id, false, line, "Preço inválido.".into());
            continue;
        };
        let now = st.now();
        if let Some(&(p, i)) = place.get(&id) {
            let sku = &mut st.catalog.products[p].skus[i];
            sku.price_cost = cost.unwrap_or(Decimal::ZERO);
            sku.price_sale = sale.unwrap_or(Decimal::ZERO);
            sku.price_discount = discount.unwrap_or(Decimal::ZERO);
            sku.updated_at = now;
        }
        st.queues.log(queue_id, true, line, "SKU atualizado".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::sample_catalog;
    use crate::sim::{Faults, SimLimits};

    fn state() -> State {
        State::new(
            sample_catalog(1, 2, 3),
            Faults::default(),
            SimLimits::default(),
            Duration::from_secs(60),
        )
    }

    fn row(header: &[&str], id: &str, sale: Option<f64>) -> Vec<SheetCell> {
        header
            .iter()
            .map(|h| match *h {
                "id" => SheetCell::Text(id.into()),
                "preço_venda" => sale.map_or(SheetCell::Empty, SheetCell::Number),
                "preço_custo" | "preço_promocional" => SheetCell::Number(3.0),
                _ => SheetCell::Text("x".into()),
            })
            .collect()
    }

    #[test]
    fn only_biff8_unless_told_otherwise() {
        let err = parse(b"PK\x03\x04 not really", false).unwrap_err();
        assert!(err.contains(".xls"), "{err}");
        assert!(parse(b"garbage", true).is_err());
    }

    #[test]
    fn lines_are_applied_or_refused_one_by_one() {
        let mut st = state();
        let header = sku_header(st.queues.settings.column_seed);
        let id = st.queues.create("i", "t", 0, st.now(), Work::Done);
        let head: Vec<SheetCell> = header
            .iter()
            .map(|h| SheetCell::Text((*h).into()))
            .collect();
        let rows = vec![
            head,
            row(&header, "50000", None),
            row(&header, "", Some(9.0)),
            row(&header, "424242", Some(9.0)),
        ];
        finish_import(&mut st, id, Ok(rows));
        let logs = &st.queues.queue(id).unwrap().logs;
        let got: Vec<(u64, bool)> = logs.iter().map(|e| (e.line, e.success)).collect();
        assert_eq!(got, [(1, true), (2, false), (3, false)]);
        let sku = st.sku(50_000).unwrap();
        assert_eq!(
            sku.price_sale,
            Decimal::ZERO,
            "a blank cell clears the price"
        );
        assert_eq!(sku.price_cost, Decimal::from(3));
        assert_eq!(st.queues.queue(id).unwrap().total_sent, 3);
    }

    #[test]
    fn a_reordered_header_applies_nothing() {
        let mut st = state();
        let mut header = sku_header(st.queues.settings.column_seed);
        header.reverse();
        let before = st.sku(50_000).unwrap().price_sale;
        let id = st.queues.create("i", "t", 0, st.now(), Work::Done);
        let head: Vec<SheetCell> = header
            .iter()
            .map(|h| SheetCell::Text((*h).into()))
            .collect();
        finish_import(
            &mut st,
            id,
            Ok(vec![head, row(&header, "50000", Some(1.0))]),
        );
        let logs = &st.queues.queue(id).unwrap().logs;
        assert_eq!(logs.len(), 1);
        assert!(!logs[0].success && logs[0].line == 0);
        assert_eq!(st.sku(50_000).unwrap().price_sale, before);
    }
}
