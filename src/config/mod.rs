//! Validated, typed settings built from the TOML config file and the mapping files it names.
//!
//! Loading is two steps (raw serde structs, then `validate`) so that `check` can report every
//! problem at once: unknown keys, missing environment variables, bad cron expressions, bad
//! values, mapping problems. Nothing here touches the network or the state store.

pub mod duration;
pub mod edit;
pub mod metrics;
pub mod publish;
pub mod raw;
pub mod secret;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::mapping::Mapping;
use crate::source::Format;
use crate::toml_env::parse_toml;
pub use publish::PublishSettings;
use raw::{RawConfig, RawJob, RawStore};
pub use secret::SecretString;

pub const DEFAULT_BASE_URL: &str = "https://api.dooki.com.br/v2";

/// All problems found while loading, each one sentence with its file and key.
#[derive(Debug, Default)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug)]
pub struct Settings {
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub timezone: chrono_tz::Tz,
    /// The language of run reports and summary lines (`language`; log messages stay English).
    pub language: crate::report::Lang,
    /// Reports and run records older than this are pruned.
    pub retention_days: u32,
    /// At most this many run records are kept per job, whatever their age.
    pub max_run_records: u32,
    pub stores: Vec<Arc<StoreSettings>>,
    pub jobs: Vec<JobSettings>,
    /// `[publish]`, when the config has one.
    pub publish: Option<PublishSettings>,
    /// `[metrics]`: where the daemon serves metrics and the status page; `None`: nowhere.
    pub metrics: Option<metrics::MetricsSettings>,
    /// Non-fatal findings (for example a literal token in a world-readable file).
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn store(&self, name: &str) -> Option<&Arc<StoreSettings>> {
        self.stores.iter().find(|s| s.name == name)
    }
}

/// Equal settings mean the same client and rate-limit budget can serve them (kept across reloads).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    pub name: String,
    pub alias: String,
    pub base_url: String,
    pub user_token: SecretString,
    pub user_secret_key: SecretString,
    pub limits: Limits,
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub max_retries: u32,
    pub index_full_rescan: Duration,
    /// How often an import or export queue is polled.
    pub queue_poll: Duration,
    /// A full index rescan of a store with more SKUs than this reads the SKU export (`match =
    /// "sku"` only) instead of paging.
    pub index_export_above: u64,
}

/// Requests per window, per route group (docs/yampi-api.md, Rate limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub default: u32,
    pub get_skus: u32,
    pub get_products: u32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default: 60,
            get_skus: 30,
            get_products: 30,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Stock,
    Price,
    BatchEdit,
    Audit,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Stock => "stock",
            JobKind::Price => "price",
            JobKind::BatchEdit => "batch_edit",
            JobKind::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// A glob, already resolved against the config file's directory.
    pub path: String,
    pub format: Option<Format>,
    pub sheet: Option<String>,
    pub settle: Duration,
}

#[derive(Debug)]
pub struct JobSettings {
    pub name: String,
    pub store: String,
    pub kind: JobKind,
    pub schedule_text: Option<String>,
    pub schedule: Option<cron::Schedule>,
    pub source: Option<SourceSettings>,
    pub mapping_path: Option<PathBuf>,
    pub mapping: Option<Mapping>,
    pub max_shrink_pct: Decimal,
    pub max_zeroed_pct: Decimal,
    /// A feed quantity (or min quantity) above this refuses its row.
    pub max_quantity: i64,
    /// `batch_edit` jobs: the validated edit.
    pub edit: Option<edit::BatchEdit>,
    /// `batch_edit` jobs: an occurrence older than this when a run first sees it is missed,
    /// never sent late.
    pub max_lateness: Duration,
    /// An import or export queue not finished after this long fails the job.
    pub queue_timeout: Duration,
    /// Price jobs: how changed prices reach the store.
    pub route: PriceRoute,
    /// Price jobs: the merchant's own SKU export, whose header an import must repeat.
    pub import_template: Option<PathBuf>,
    /// Price jobs: fixed time `route = "auto"` adds to an import's queue time (export, file,
    /// Yampi picking the queue up).
    pub import_overhead: Duration,
    /// `audit` jobs: a run that finds differences exits 4 instead of 0.
    pub fail_on_differences: bool,
}

/// How a price job's changes reach the store (`route`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRoute {
    /// An import when `[publish]` is set and it is estimated faster than the API.
    Auto,
    /// Always the API.
    Api,
    /// Always an import (needs `[publish]`).
    Import,
}

impl PriceRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceRoute::Auto => "auto",
            PriceRoute::Api => "api",
            PriceRoute::Import => "import",
        }
    }
}

/// `import_overhead` when the job does not set it.
pub const DEFAULT_IMPORT_OVERHEAD: Duration = Duration::from_secs(5 * 60);

/// `queue_timeout` when the job does not set it.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(2 * 3_600);
/// `queue_poll` when the store does not set it.
pub const DEFAULT_QUEUE_POLL: Duration = Duration::from_secs(10);
/// `index_export_above` when the store does not set it.
pub const DEFAULT_INDEX_EXPORT_ABOVE: u64 = 5_000;

/// `max_lateness` when the job does not set it.
pub const DEFAULT_MAX_LATENESS: Duration = Duration::from_secs(3_600);

/// Reads and validates the config at `path`; `state_dir_override` is `--state-dir`.
pub fn load(path: &Path, state_dir_override: Option<&Path>) -> Result<Settings, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![format!(
            "cannot read the config file {}: {e}",
            path.display()
        )])
    })?;
    let mut errors = Vec::new();
    let settings = from_str(&text, path, state_dir_override, &mut errors);
    match settings {
        Some(s) if errors.is_empty() => Ok(s),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Turns a 5-field crontab (minute first) into the 6-field form the `cron` crate wants.
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_string(),
        n => {
            return Err(format!(
                "has {n} fields; use 5 (minute hour day month weekday) or 6 (with seconds first)"
            ));
        }
    };
    let schedule = cron::Schedule::from_str(&full)
        .map_err(|e| format!("is not a valid cron expression ({e})"))?;
    // A valid expression can still name no real date (day 30 of February, day 31 of a 30-day
    // month only): the daemon would wait forever.
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(
            "never fires: no date matches it (check the day of month against the months it names)"
                .into(),
        );
    }
    Ok(schedule)
}

/// Resolves a relative path from the config: next to the config file first, then the working
/// directory (so `mappings/x.toml` works both from the repo root and from `/etc/yampi-sync`).
pub fn resolve_path(config_dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let beside = config_dir.join(path);
    // A glob never "exists" itself, so its directory decides.
    let usable = |c: &Path| c.exists() || glob_parent_exists(c);
    if !usable(&beside) && usable(path) {
        return path.to_path_buf();
    }
    beside
}

fn glob_parent_exists(p: &Path) -> bool {
    p.parent()
        .is_some_and(|d| !d.as_os_str().is_empty() && d.is_dir())
}

pub fn from_str(
    text: &str,
    path: &Path,
    state_dir_override: Option<&Path>,
    errors: &mut Vec<String>,
) -> Option<Settings> {
    let raw: RawConfig = parse_toml(text, path, true, errors)?;
    let file = path.display().to_string();
    let config_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut warnings = Vec::new();

    let state_dir = match (state_dir_override, &raw.state_dir) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(s)) => resolve_path(&config_dir, s),
        (None, None) => match std::env::var_os("STATE_DIRECTORY") {
            // systemd's StateDirectory= may list several, separated by ':'.
            Some(v) => PathBuf::from(
                v.to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            None => {
                errors.push(format!(
                    "{file}: `state_dir` is not set (set it, pass --state-dir, or run under systemd with StateDirectory=)"
                ));
                PathBuf::new()
            }
        },
    };

    let timezone = match raw.timezone.as_deref() {
        None => chrono_tz::America::Sao_Paulo,
        Some(tz) => tz.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
            errors.push(format!(
                "{file}: `timezone` \"{tz}\" is not an IANA time zone name (for example America/Sao_Paulo)"
            ));
            chrono_tz::UTC
        }),
    };

    let language = match raw.language.as_deref() {
        None => crate::report::Lang::default(),
        Some(l) => crate::report::Lang::parse(l).unwrap_or_else(|| {
            errors.push(format!(
                "{file}: `language` \"{l}\" is not supported; use one of {}",
                crate::report::Lang::ACCEPTED
            ));
            crate::report::Lang::default()
        }),
    };

    if raw.store.is_empty() {
        errors.push(format!("{file}: no [[store]] is configured"));
    }
    let world_readable = file_is_group_or_world_readable(path);
    // Which stores write their token in the file itself rather than as `${VAR}`.
    let literal_tokens: Vec<bool> = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("store").and_then(|s| s.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .map(|s| {
            s.get("user_token")
                .and_then(toml::Value::as_str)
                .is_some_and(|t| !t.trim().is_empty() && !t.contains("${"))
        })
        .collect();
    let mut stores: Vec<Arc<StoreSettings>> = Vec::new();
    for (i, rs) in raw.store.iter().enumerate() {
        let literal = world_readable && literal_tokens.get(i).copied().unwrap_or(false);
        if let Some(s) = validate_store(rs, i, &file, errors, &mut warnings, literal) {
            if stores.iter().any(|o| o.name == s.name) {
                errors.push(format!(
                    "{file}: two stores are named \"{}\"; store names must be unique",
                    s.name
                ));
            }
            stores.push(Arc::new(s));
        }
    }

    let mut jobs: Vec<JobSettings> = Vec::new();
    for (i, rj) in raw.job.iter().enumerate() {
        if let Some(j) = validate_job(rj, i, &file, &config_dir, &stores, raw.store.len(), errors) {
            if jobs.iter().any(|o| o.name == j.name) {
                errors.push(format!(
                    "{file}: two jobs are named \"{}\"; job names must be unique",
                    j.name
                ));
            }
            jobs.push(j);
        }
    }

    let publish = raw
        .publish
        .as_ref()
        .and_then(|p| publish::validate(p, &file, errors));
    if raw.publish.is_none() {
        for j in jobs.iter().filter(|j| j.route == PriceRoute::Import) {
            errors.push(format!(
                    "{file}: job {}: `route = \"import\"` needs a [publish] section (Yampi fetches the import file from it); add one, or use route = \"api\"",
                    j.name
                ));
        }
    }
    Some(Settings {
        path: path.to_path_buf(),
        state_dir,
        timezone,
        language,
        retention_days: in_range(
            raw.retention_days,
            30,
            ranges::RETENTION_DAYS,
            &format!("{file}: `retention_days`"),
            errors,
        ),
        max_run_records: in_range(
            raw.max_run_records,
            1000,
            ranges::MAX_RUN_RECORDS,
            &format!("{file}: `max_run_records`"),
            errors,
        ),
        stores,
        jobs,
        publish,
        metrics: raw
            .metrics
            .as_ref()
            .and_then(|m| metrics::validate(m, &file, errors)),
        warnings,
    })
}

/// The accepted range of every numeric key: wide enough for any real setup, narrow enough that
/// no later arithmetic (instants, durations, dates, allocations) can overflow or panic.
pub mod ranges {
    use std::ops::RangeInclusive;

    pub const RETENTION_DAYS: RangeInclusive<u32> = 1..=3_650;
    pub const MAX_RUN_RECORDS: RangeInclusive<u32> = 1..=1_000_000;
    pub const MAX_IN_FLIGHT: RangeInclusive<u32> = 1..=16;
    pub const TIMEOUT_SECS: RangeInclusive<u64> = 1..=3_600;
    pub const MAX_RETRIES: RangeInclusive<u32> = 0..=100;
    /// 0: a full rescan every run.
    pub const INDEX_FULL_RESCAN_HOURS: RangeInclusive<u64> = 0..=8_760;
    /// Requests per window, per route group.
    pub const LIMIT: RangeInclusive<u32> = 1..=100_000;
    pub const WINDOW_MS: RangeInclusive<u64> = 1..=3_600_000;
    pub const SETTLE_MS: RangeInclusive<u64> = 0..=3_600_000;
    use std::time::Duration;
    pub const QUEUE_POLL: RangeInclusive<Duration> =
        Duration::from_millis(50)..=Duration::from_secs(3_600);
    pub const INDEX_EXPORT_ABOVE: RangeInclusive<u64> = 0..=100_000_000;
    pub const QUEUE_TIMEOUT: RangeInclusive<Duration> =
        Duration::from_secs(1)..=Duration::from_secs(7 * 86_400);
    pub const IMPORT_OVERHEAD: RangeInclusive<Duration> =
        Duration::ZERO..=Duration::from_secs(86_400);
}

/// `value` (or `default` when unset) if it lies in `range`; otherwise one error naming the key
/// (`what` already holds the file and the key) and the range, and the default.
fn in_range<T>(
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    what: &str,
    errors: &mut Vec<String>,
) -> T
where
    T: PartialOrd + Copy + std::fmt::Display,
{
    match value {
        None => default,
        Some(v) if range.contains(&v) => v,
        Some(v) => {
            errors.push(format!(
                "{what} must be between {} and {}, not {v}",
                range.start(),
                range.end()
            ));
            default
        }
    }
}

/// A humane duration key (`"10s"`), `default` when absent; a bad or out-of-range value is one
/// error naming the key.
fn duration_in(
    value: Option<&str>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
    what: &str,
    errors: &mut Vec<String>,
) -> Duration {
    let Some(text) = value else {
        return default;
    };
    match duration::parse_duration(text) {
        Ok(d) if range.contains(&d) => d,
        Ok(_) => {
            errors.push(format!(
                "{what} must be between \"{}\" and \"{}\", not \"{text}\"",
                duration::format_duration(*range.start()),
                duration::format_duration(*range.end())
            ));
            default
        }
        Err(e) => {
            errors.push(format!("{what} {e}"));
            default
        }
    }
}

fn file_is_group_or_world_readable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o044 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

fn validate_store(
    rs: &RawStore,
    i: usize,
    file: &str,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
    literal_token_readable_by_others: bool,
) -> Option<StoreSettings> {
    let label = rs.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
    let mut ok = true;
    let mut required = |v: &Option<String>, key: &str| -> String {
        match v {
            Some(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                errors.push(format!("{file}: store {label}: `{key}` is required"));
                ok = false;
                String::new()
            }
        }
    };
    let name = required(&rs.name, "name");
    let alias = required(&rs.alias, "alias");
    let token = required(&rs.user_token, "user_token");
    let secret = required(&rs.user_secret_key, "user_secret_key");
    if literal_token_readable_by_others {
        warnings.push(format!(
            "{file} holds store {label}'s user_token literally and other users can read the file; use \"${{YAMPI_USER_TOKEN}}\" or chmod 600"
        ));
    }
    let base_url = rs
        .base_url
        .clone()
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
        .trim_end_matches('/')
        .to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        errors.push(format!(
            "{file}: store {label}: `base_url` \"{base_url}\" must start with http:// or https://"
        ));
        ok = false;
    }
    let key = |k: &str| format!("{file}: store {label}: `{k}`");
    let mut limits = Limits::default();
    if let Some(l) = &rs.limits {
        for (v, slot, k) in [
            (l.default, &mut limits.default, "limits.default"),
            (l.get_skus, &mut limits.get_skus, "limits.get_skus"),
            (
                l.get_products,
                &mut limits.get_products,
                "limits.get_products",
            ),
        ] {
            *slot = in_range(v, *slot, ranges::LIMIT, &key(k), errors);
        }
        let ms = in_range(
            l.window_ms,
            60_000,
            ranges::WINDOW_MS,
            &key("limits.window_ms"),
            errors,
        );
        limits.window = Duration::from_millis(ms);
    }
    let max_in_flight = in_range(
        rs.max_in_flight,
        4,
        ranges::MAX_IN_FLIGHT,
        &key("max_in_flight"),
        errors,
    ) as usize;
    let timeout_secs = in_range(
        rs.timeout_secs,
        30,
        ranges::TIMEOUT_SECS,
        &key("timeout_secs"),
        errors,
    );
    let max_retries = in_range(
        rs.max_retries,
        6,
        ranges::MAX_RETRIES,
        &key("max_retries"),
        errors,
    );
    let rescan_hours = in_range(
        rs.index_full_rescan_hours,
        24,
        ranges::INDEX_FULL_RESCAN_HOURS,
        &key("index_full_rescan_hours"),
        errors,
    );
    let queue_poll = duration_in(
        rs.queue_poll.as_deref(),
        DEFAULT_QUEUE_POLL,
        ranges::QUEUE_POLL,
        &key("queue_poll"),
        errors,
    );
    let index_export_above = in_range(
        rs.index_export_above,
        DEFAULT_INDEX_EXPORT_ABOVE,
        ranges::INDEX_EXPORT_ABOVE,
        &key("index_export_above"),
        errors,
    );
    if !ok {
        return None;
    }
    Some(StoreSettings {
        name,
        alias,
        base_url,
        user_token: SecretString::new(token),
        user_secret_key: SecretString::new(secret),
        limits,
        max_in_flight,
        timeout: Duration::from_secs(timeout_secs),
        max_retries,
        index_full_rescan: Duration::from_secs(rescan_hours * 3600),
        queue_poll,
        index_export_above,
    })
}

fn validate_job(
    rj: &RawJob,
    i: usize,
    file: &str,
    config_dir: &Path,
    stores: &[Arc<StoreSettings>],
    configured_stores: usize,
    errors: &mut Vec<String>,
) -> Option<JobSettings> {
    let label = rj.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
    let before = errors.len();
    let mut mapping_errors_len = 0;
    let name = rj.name.clone().unwrap_or_else(|| {
        errors.push(format!("{file}: job {label}: `name` is required"));
        String::new()
    });
    let store = match &rj.store {
        Some(s) if stores.iter().any(|st| &st.name == s) => s.clone(),
        Some(s) => {
            errors.push(format!(
                "{file}: job {label}: store \"{s}\" is not defined in any [[store]]"
            ));
            s.clone()
        }
        None if configured_stores == 1 => {
            stores.first().map(|s| s.name.clone()).unwrap_or_default()
        }
        // The only store was refused, or none is configured: that error is already reported.
        None if configured_stores == 0 => String::new(),
        None => {
            errors.push(format!(
                "{file}: job {label}: `store` is required when there is more than one store"
            ));
            String::new()
        }
    };
    let kind = match rj.kind.as_deref() {
        Some("stock") => JobKind::Stock,
        Some("price") => JobKind::Price,
        Some("batch_edit") => JobKind::BatchEdit,
        Some("audit") => JobKind::Audit,
        Some(other) => {
            errors.push(format!(
                "{file}: job {label}: `kind` \"{other}\" is not one of stock, price, batch_edit, audit"
            ));
            JobKind::Stock
        }
        None => {
            errors.push(format!("{file}: job {label}: `kind` is required"));
            JobKind::Stock
        }
    };
    let fail_on_differences = match (rj.fail_on_differences, kind) {
        (None, _) => false,
        (Some(v), JobKind::Audit) => v,
        (Some(_), _) => {
            errors.push(format!(
                "{file}: job {label}: `fail_on_differences` is only for audit jobs"
            ));
            false
        }
    };
    let edit = match (&rj.edit, kind) {
        (Some(e), JobKind::BatchEdit) => edit::validate(e, &format!("{file}: job {label}"), errors),
        (None, JobKind::BatchEdit) => {
            errors.push(format!(
                "{file}: job {label}: a batch_edit job needs `edit = {{ ... }}`"
            ));
            None
        }
        (Some(_), _) => {
            errors.push(format!(
                "{file}: job {label}: `edit` is only for batch_edit jobs"
            ));
            None
        }
        (None, _) => None,
    };
    let max_lateness = match (&rj.max_lateness, kind) {
        (None, _) => DEFAULT_MAX_LATENESS,
        (Some(text), JobKind::BatchEdit) => match duration::parse_duration(text) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                errors.push(format!(
                    "{file}: job {label}: `max_lateness` must be above zero (for example \"1h\")"
                ));
                DEFAULT_MAX_LATENESS
            }
            Err(e) => {
                errors.push(format!("{file}: job {label}: `max_lateness` {e}"));
                DEFAULT_MAX_LATENESS
            }
        },
        (Some(_), _) => {
            errors.push(format!(
                "{file}: job {label}: `max_lateness` is only for batch_edit jobs"
            ));
            DEFAULT_MAX_LATENESS
        }
    };
    let queue_timeout = duration_in(
        rj.queue_timeout.as_deref(),
        DEFAULT_QUEUE_TIMEOUT,
        ranges::QUEUE_TIMEOUT,
        &format!("{file}: job {label}: `queue_timeout`"),
        errors,
    );
    let price_only = |key: &str, set: bool, errors: &mut Vec<String>| {
        if set && kind != JobKind::Price {
            errors.push(format!(
                "{file}: job {label}: `{key}` is only for price jobs (stock stays on the API)"
            ));
        }
    };
    price_only("route", rj.route.is_some(), errors);
    price_only("import_template", rj.import_template.is_some(), errors);
    price_only("import_overhead", rj.import_overhead.is_some(), errors);
    let route = match rj.route.as_deref() {
        None | Some("auto") => PriceRoute::Auto,
        Some("api") => PriceRoute::Api,
        Some("import") => PriceRoute::Import,
        Some(other) => {
            errors.push(format!(
                "{file}: job {label}: `route` \"{other}\" is not one of auto, api, import"
            ));
            PriceRoute::Auto
        }
    };
    let import_template = rj.import_template.as_ref().map(|t| {
        let p = resolve_path(config_dir, t);
        if !p.is_file() {
            errors.push(format!(
                "{file}: job {label}: `import_template` {} is not a readable file (an SKU export downloaded from Yampi)",
                p.display()
            ));
        }
        p
    });
    let import_overhead = duration_in(
        rj.import_overhead.as_deref(),
        DEFAULT_IMPORT_OVERHEAD,
        ranges::IMPORT_OVERHEAD,
        &format!("{file}: job {label}: `import_overhead`"),
        errors,
    );
    let (schedule_text, schedule) = match &rj.schedule {
        Some(s) => match parse_schedule(s) {
            Ok(sched) => (Some(s.clone()), Some(sched)),
            Err(e) => {
                errors.push(format!("{file}: job {label}: schedule \"{s}\" {e}"));
                (Some(s.clone()), None)
            }
        },
        None => (None, None),
    };
    let source = match &rj.source {
        Some(src) => {
            let format = match src.format.as_deref() {
                None => None,
                Some(f) => match f.to_ascii_lowercase().as_str() {
                    "csv" => Some(Format::Csv),
                    "xlsx" => Some(Format::Xlsx),
                    "xls" => Some(Format::Xls),
                    "ods" => Some(Format::Ods),
                    _ => {
                        errors.push(format!(
                            "{file}: job {label}: source format \"{f}\" is not one of csv, xlsx, xls, ods"
                        ));
                        None
                    }
                },
            };
            match &src.path {
                Some(p) => {
                    let resolved = resolve_path(config_dir, p);
                    if format.is_none() && Format::from_path(&resolved).is_none() {
                        errors.push(format!(
                            "{file}: job {label}: cannot tell the format of \"{p}\" from its extension; set source.format"
                        ));
                    }
                    Some(SourceSettings {
                        path: resolved.to_string_lossy().into_owned(),
                        format,
                        sheet: src.sheet.clone(),
                        settle: Duration::from_millis(in_range(
                            src.settle_ms,
                            2000,
                            ranges::SETTLE_MS,
                            &format!("{file}: job {label}: `source.settle_ms`"),
                            errors,
                        )),
                    })
                }
                None => {
                    errors.push(format!("{file}: job {label}: `source.path` is required"));
                    None
                }
            }
        }
        None => {
            if matches!(kind, JobKind::Stock | JobKind::Price | JobKind::Audit) {
                errors.push(format!("{file}: job {label}: `source` is required"));
            }
            None
        }
    };
    let (mapping_path, mapping) = match &rj.mapping {
        Some(m) => {
            let p = resolve_path(config_dir, m);
            // Unknown keys in the mapping are reported but do not make the job unusable for
            // `check`'s source checks; only a mapping that failed to load does.
            let mut mapping_errors = Vec::new();
            let mapping = crate::mapping::load(&p, &mut mapping_errors);
            mapping_errors_len += mapping_errors.len();
            errors.extend(mapping_errors);
            if let Some(mp) = &mapping {
                if kind == JobKind::Stock && mp.stock.is_none() {
                    errors.push(format!(
                        "{}: job {label} is a stock job but the mapping has no [stock] section",
                        p.display()
                    ));
                }
                if kind == JobKind::Audit && mp.stock.is_none() && mp.price.is_none() {
                    errors.push(format!(
                        "{}: job {label} is an audit job but the mapping has neither a [stock] nor a [price] section: nothing to compare",
                        p.display()
                    ));
                }
                if kind == JobKind::Price && mp.price.is_none() {
                    errors.push(format!(
                        "{}: job {label} is a price job but the mapping has no [price] section",
                        p.display()
                    ));
                }
            }
            (Some(p), mapping)
        }
        None => {
            if matches!(kind, JobKind::Stock | JobKind::Price | JobKind::Audit) {
                errors.push(format!("{file}: job {label}: `mapping` is required"));
            }
            (None, None)
        }
    };
    let pct = |v: Option<Decimal>, key: &str, default: u32, errors: &mut Vec<String>| {
        let v = v.unwrap_or(Decimal::from(default));
        if v < Decimal::ZERO || v > Decimal::from(100) {
            errors.push(format!(
                "{file}: job {label}: `{key}` must be between 0 and 100"
            ));
        }
        v
    };
    let max_shrink_pct = pct(rj.max_shrink_pct, "max_shrink_pct", 50, errors);
    let max_zeroed_pct = pct(rj.max_zeroed_pct, "max_zeroed_pct", 30, errors);
    let max_quantity = rj
        .max_quantity
        .unwrap_or(crate::mapping::DEFAULT_MAX_QUANTITY);
    let cap = crate::mapping::MAX_QUANTITY_CAP;
    if !(1..=cap).contains(&max_quantity) {
        errors.push(format!(
            "{file}: job {label}: `max_quantity` must be between 1 and {cap}"
        ));
    }
    let mut mapping = mapping;
    if let Some(stock) = mapping.as_mut().and_then(|m| m.stock.as_mut()) {
        stock.max_quantity = max_quantity;
        if let crate::mapping::MinQuantity::Fixed(n) = stock.min_quantity
            && n > max_quantity
        {
            errors.push(format!(
                "{file}: job {label}: the mapping's min_quantity {n} is above the job's max_quantity {max_quantity}"
            ));
        }
    }
    if errors.len() - mapping_errors_len != before || (rj.mapping.is_some() && mapping.is_none()) {
        return None;
    }
    Some(JobSettings {
        name,
        store,
        kind,
        schedule_text,
        schedule,
        source,
        mapping_path,
        mapping,
        max_shrink_pct,
        max_zeroed_pct,
        max_quantity,
        edit,
        max_lateness,
        queue_timeout,
        route,
        import_template,
        import_overhead,
        fail_on_differences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_have_defaults_and_ranges() {
        let text = |store_extra: &str, job_extra: &str| {
            format!(
                "state_dir = \"s\"\n[[store]]\nname = \"m\"\nalias = \"a\"\nuser_token = \"t\"\nuser_secret_key = \"k\"\n{store_extra}\n[[job]]\nname = \"b\"\nstore = \"m\"\nkind = \"batch_edit\"\nedit = {{ attribute = \"price_sale\", operation_type = \"decrement\", value_type = \"percent\", value = 1, restrictions = {{ include = {{ brands_ids = [3] }} }} }}\n{job_extra}\n"
            )
        };
        let load = |t: String| {
            let mut errors = Vec::new();
            let s = from_str(&t, Path::new("/tmp/q.toml"), None, &mut errors);
            (s, errors)
        };
        let (s, errors) = load(text("", ""));
        assert!(errors.is_empty(), "{errors:?}");
        let s = s.unwrap();
        assert_eq!(s.stores[0].queue_poll, Duration::from_secs(10));
        assert_eq!(s.jobs[0].queue_timeout, Duration::from_secs(7_200));
        let (s, errors) = load(text("queue_poll = \"50ms\"", "queue_timeout = \"30m\""));
        assert!(errors.is_empty(), "{errors:?}");
        let s = s.unwrap();
        assert_eq!(s.stores[0].queue_poll, Duration::from_millis(50));
        assert_eq!(s.jobs[0].queue_timeout, Duration::from_secs(1_800));
        let (_, errors) = load(text("queue_poll = \"10ms\"", "queue_timeout = \"soon\""));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("queue_poll") && e.contains("50ms")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("queue_timeout")),
            "{errors:?}"
        );
    }

    #[test]
    fn only_a_literal_token_in_a_readable_file_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let config = |token: &str| {
            format!(
                "state_dir = \"s\"\n[[store]]\nname = \"m\"\nalias = \"a\"\nuser_token = \"{token}\"\nuser_secret_key = \"k\"\n"
            )
        };
        // SAFETY: a variable name no other test uses.
        unsafe { std::env::set_var("YS_TEST_TOKEN_LITERAL", "x") };
        std::fs::write(&path, config("${YS_TEST_TOKEN_LITERAL}")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert!(load(&path, None).unwrap().warnings.is_empty());
        std::fs::write(&path, config("tok-literal")).unwrap();
        let s = load(&path, None).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            !s.warnings[0].contains("tok-literal"),
            "the warning never shows the token"
        );
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused() {
        let Err(err) = parse_schedule("0 0 30 2 *") else {
            panic!("a schedule that never fires was accepted")
        };
        assert!(err.contains("never fires"), "{err}");
        assert!(parse_schedule("0 0 29 2 *").is_ok(), "leap years fire");
        assert!(parse_schedule("0 0 31 * *").is_ok());
    }

    #[test]
    fn five_and_six_field_schedules() {
        assert!(parse_schedule("*/10 * * * *").is_ok());
        assert!(parse_schedule("0 0 0 27 11 *").is_ok());
        assert!(parse_schedule("* *").is_err());
        assert!(parse_schedule("61 * * * *").is_err());
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::parse_schedule;
    use chrono::Utc;
    use chrono_tz::America::{New_York, Sao_Paulo};

    /// The next three runs after `utc` (RFC 3339), in UTC minutes.
    fn next_after(expr: &str, tz: chrono_tz::Tz, utc: &str) -> Vec<String> {
        let start = chrono::DateTime::parse_from_rfc3339(utc)
            .unwrap()
            .with_timezone(&tz);
        parse_schedule(expr)
            .unwrap()
            .after(&start)
            .take(3)
            .map(|t| t.with_timezone(&Utc).format("%Y-%m-%dT%H:%M").to_string())
            .collect()
    }

    #[test]
    fn schedules_are_read_in_the_configured_zone() {
        // 09:00 in São Paulo (UTC−3, no DST) is 12:00 UTC.
        assert_eq!(
            next_after("0 9 * * *", Sao_Paulo, "2026-11-22T00:00:00Z")[0],
            "2026-11-22T12:00"
        );
        // Six fields: seconds first.
        assert_eq!(
            next_after("30 0 9 * * *", Sao_Paulo, "2026-11-22T00:00:00Z")[0],
            "2026-11-22T12:00"
        );
    }

    #[test]
    fn daylight_saving_days() {
        // New York springs forward on 2026-03-08: 09:00 local is 14:00 UTC before, 13:00 after.
        assert_eq!(
            next_after("0 9 * * *", New_York, "2026-03-07T00:00:00Z"),
            ["2026-03-07T14:00", "2026-03-08T13:00", "2026-03-09T13:00"]
        );
        // 02:30 does not exist that day: the run is not invented at another hour, nor doubled.
        let spring = next_after("30 2 * * *", New_York, "2026-03-07T12:00:00Z");
        assert!(
            !spring.contains(&"2026-03-08T06:30".to_string()),
            "{spring:?}"
        );
        assert_eq!(
            spring
                .iter()
                .filter(|t| t.starts_with("2026-03-09"))
                .count(),
            1,
            "{spring:?}"
        );
        // On 2026-11-01 01:30 happens twice; the daemon's loop computes each next run after the
        // previous one, so whatever the crate yields stays strictly increasing.
        let fall = next_after("30 1 * * *", New_York, "2026-10-31T12:00:00Z");
        assert!(fall.windows(2).all(|w| w[0] < w[1]), "{fall:?}");
    }
}
