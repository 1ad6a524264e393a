//! Serde mirror of the TOML config file, before validation.
//!
//! Every field is optional here so that validation (in `config::mod`) can name every problem at
//! once instead of stopping at the first missing key. Unknown keys are collected by
//! `serde_ignored` in the loader, not rejected by serde, for the same reason.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub state_dir: Option<String>,
    pub timezone: Option<String>,
    /// `"pt-BR"` or `"en"`: the language of reports and summary lines.
    pub language: Option<String>,
    pub retention_days: Option<u32>,
    pub max_run_records: Option<u32>,
    #[serde(default)]
    pub store: Vec<RawStore>,
    #[serde(default)]
    pub job: Vec<RawJob>,
    pub publish: Option<RawPublish>,
    pub metrics: Option<RawMetrics>,
}

/// `[metrics]`: the daemon's listener for `/metrics`, `/healthz` and the status page.
#[derive(Debug, Default, Deserialize)]
pub struct RawMetrics {
    pub listen: Option<String>,
    pub token: Option<String>,
}

/// `[publish]`: the built-in file server Yampi downloads import spreadsheets from.
#[derive(Debug, Default, Deserialize)]
pub struct RawPublish {
    pub listen: Option<String>,
    pub public_base_url: Option<String>,
    /// A humane duration ("6h").
    pub file_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub name: Option<String>,
    pub alias: Option<String>,
    pub base_url: Option<String>,
    pub user_token: Option<String>,
    pub user_secret_key: Option<String>,
    pub limits: Option<RawLimits>,
    pub max_in_flight: Option<u32>,
    pub timeout_secs: Option<u64>,
    pub max_retries: Option<u32>,
    pub index_full_rescan_hours: Option<u64>,
    /// How often a queue is polled (a humane duration, "10s"; at least "50ms").
    pub queue_poll: Option<String>,
    /// Above this many SKUs a full index rescan reads the SKU export instead of paging.
    pub index_export_above: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLimits {
    pub default: Option<u32>,
    pub get_skus: Option<u32>,
    pub get_products: Option<u32>,
    /// Length of the API's fixed rate-limit window. Yampi's is one minute; the simulator's
    /// windows can be shorter, and a config pointed at it must say so to pace correctly.
    pub window_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawJob {
    pub name: Option<String>,
    pub store: Option<String>,
    pub kind: Option<String>,
    pub schedule: Option<String>,
    pub source: Option<RawSource>,
    pub mapping: Option<String>,
    pub max_shrink_pct: Option<rust_decimal::Decimal>,
    pub max_zeroed_pct: Option<rust_decimal::Decimal>,
    /// Largest stock quantity a feed row may set; above it the row is refused.
    pub max_quantity: Option<i64>,
    pub edit: Option<toml::Value>,
    /// `batch_edit` jobs: a humane duration ("1h").
    pub max_lateness: Option<String>,
    /// A queue not finished after this long fails the job (a humane duration, "2h").
    pub queue_timeout: Option<String>,
    /// Price jobs: "auto" | "api" | "import".
    pub route: Option<String>,
    /// Price jobs: an SKU export the merchant downloaded, whose header an import must repeat.
    pub import_template: Option<String>,
    /// Price jobs: what `route = "auto"` adds to an import's queue time (a humane duration).
    pub import_overhead: Option<String>,
    /// `audit` jobs: differences make the run exit 4.
    pub fail_on_differences: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSource {
    pub path: Option<String>,
    pub format: Option<String>,
    pub sheet: Option<String>,
    /// How long a file's size and mtime must stay still before it is read.
    pub settle_ms: Option<u64>,
}
