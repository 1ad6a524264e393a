//! The part of `check` that asks the store (skipped with `--offline`): a few read-only calls per
//! store, within its rate limits, each failure saying which setting to fix.
//!
//! Per store: `GET /ping` (the credentials), `GET /{alias}/logistics/stocks` (the alias, and
//! whether the mapped `stock_id`s exist), and per file-driven job up to `KEYS_TRIED` lookups of
//! the feed's first keys by the mapping's `match` field (`GET /{alias}/catalog/skus?sku=…`): a
//! mapping whose first keys match nothing is almost always the wrong `match` or `key`. A store
//! that cannot be reached at all (network down, 5xx) is a warning, not an error: the rest of the
//! config was checked, and a reload must not be blocked by a passing outage.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{JobSettings, Settings, StoreSettings};
use crate::mapping::Mapping;
use crate::shop::{ApiError, ShopClient};

/// Feed keys looked up per job at most.
pub const KEYS_TRIED: usize = 3;

/// The longest the online part may take per store.
const STORE_BUDGET: Duration = Duration::from_secs(30);

/// Problems (errors) and warnings found by asking the stores.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

pub async fn check_stores(settings: &Settings) -> Findings {
    let mut out = Findings::default();
    let tasks = settings.stores.iter().map(|store| {
        let jobs: Vec<&JobSettings> = settings
            .jobs
            .iter()
            .filter(|j| j.store == store.name)
            .collect();
        async move {
            let mut f = Findings::default();
            match tokio::time::timeout(STORE_BUDGET, check_store(store, &jobs, &mut f)).await {
                Ok(()) => {}
                Err(_) => f.warnings.push(format!(
                    "store {}: the store did not answer within {} s; it was not checked (run `check` again, or `check --offline`)",
                    store.name,
                    STORE_BUDGET.as_secs()
                )),
            }
            f
        }
    });
    for f in futures::future::join_all(tasks).await {
        out.problems.extend(f.problems);
        out.warnings.extend(f.warnings);
    }
    out
}

/// The sentence for an answer that names a setting, or `None` when the store just was not
/// reachable.
fn refused(store: &StoreSettings, what: &str, e: &ApiError) -> Option<String> {
    match e.status() {
        Some(401 | 403) => Some(format!(
            "store {}: the API refused the credentials on {what} (HTTP {}): check `user_token` and `user_secret_key` (the API user's token and secret key, in the Yampi admin under Perfil → Credenciais de API)",
            store.name,
            e.status().unwrap_or_default()
        )),
        Some(404) => Some(format!(
            "store {}: no store \"{}\" answers to these credentials ({what}: HTTP 404): check `alias` (the store's alias, as in <alias>.yampi.com.br)",
            store.name, store.alias
        )),
        Some(s) if s < 500 => Some(format!("store {}: {what}: {e}", store.name)),
        _ => None,
    }
}

async fn check_store(store: &StoreSettings, jobs: &[&JobSettings], f: &mut Findings) {
    let mut quick = StoreSettings::clone(store);
    quick.max_retries = 0;
    quick.timeout = quick.timeout.min(Duration::from_secs(10));
    let client = match ShopClient::new(Arc::new(quick)) {
        Ok(c) => c,
        Err(e) => {
            f.problems.push(format!("store {}: {e}", store.name));
            return;
        }
    };
    let unreachable = |f: &mut Findings, e: &ApiError| {
        f.warnings.push(format!(
            "store {}: cannot reach {} ({e}); the store was not checked (run `check` again once it answers, or `check --offline`)",
            store.name, store.base_url
        ))
    };
    if let Err(e) = client.ping().await {
        match refused(store, "GET /ping", &e) {
            // Any other answer means the API is up (the ping route may be gone).
            Some(p) if matches!(e.status(), Some(401 | 403)) => return f.problems.push(p),
            Some(_) => {}
            None => return unreachable(f, &e),
        }
    }
    let stocks = match client.logistics_stocks().await {
        Ok(s) => s,
        Err(e) => {
            match refused(store, "GET /{alias}/logistics/stocks", &e) {
                Some(p) => f.problems.push(p),
                None => unreachable(f, &e),
            }
            return;
        }
    };
    for job in jobs {
        let Some(mapping) = &job.mapping else {
            continue;
        };
        if let Some(stock) = &mapping.stock
            && let Err(why) = crate::pipeline::stock::mapped_stocks(mapping, stock, &stocks)
        {
            f.problems.push(format!(
                "job {}: {why}: check `stock_id` / `stocks`",
                job.name
            ));
        }
        if let Some(p) = keys_match(&client, job, mapping).await {
            f.problems.push(p);
        }
    }
}

/// The first keys of the job's newest file, looked up by the mapping's `match` field; a sentence
/// when none of them is a store SKU.
async fn keys_match(client: &ShopClient, job: &JobSettings, mapping: &Mapping) -> Option<String> {
    let src = job.source.as_ref()?;
    let path = crate::source::pick_newest(&src.path, Duration::ZERO)
        .ok()?
        .path?;
    let keys = first_keys(&path, src, mapping)?;
    if keys.is_empty() {
        return None;
    }
    let field = mapping.match_field.as_str();
    for key in &keys {
        match client
            .get(
                "catalog/skus",
                &[(field, key.clone()), ("limit", "1".into())],
            )
            .await
        {
            Ok(v) => {
                let found = v
                    .get("data")
                    .and_then(|d| d.as_array())
                    .is_some_and(|a| !a.is_empty());
                if found {
                    return None;
                }
            }
            // Not reachable or refused: the store checks above already said so.
            Err(_) => return None,
        }
    }
    Some(format!(
        "job {}: none of the first keys of {} ({}) is the `{field}` of a SKU in the store: check `match` (sku | erp_id | barcode) and `key` in {}",
        job.name,
        path.display(),
        keys.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", "),
        mapping.path.display()
    ))
}

fn first_keys(
    path: &std::path::Path,
    src: &crate::config::SourceSettings,
    mapping: &Mapping,
) -> Option<Vec<String>> {
    let mut opened = crate::source::open(path, src.format, src.sheet.as_deref()).ok()?;
    let col = opened.resolve(&[mapping.key.as_str()]).ok()?;
    let mut keys: Vec<String> = Vec::new();
    opened
        .for_each_row(&col, &mut |_, cells| {
            if keys.len() < KEYS_TRIED {
                let k = match &cells[0] {
                    crate::source::Cell::Text(t) => t.trim().to_string(),
                    crate::source::Cell::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                if !k.is_empty() && !keys.contains(&k) {
                    keys.push(k);
                }
            }
        })
        .ok()?;
    Some(keys)
}
