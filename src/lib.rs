//! yampi-sync keeps a Yampi store's catalog (stock per warehouse, prices) equal to what the
//! merchant's ERP says, without tripping the API's rate limits and without losing or
//! double-applying a change.
//!
//! # Layout
//! - [`cli`], [`app`], [`daemon`], [`demo`], [`init`]: commands and the ways of running them.
//! - [`explain`]: `explain JOB KEY`, why a SKU has the value it has (read-only).
//! - [`runtime`]: settings, state store and API clients opened for a command or the daemon.
//! - [`config`], [`mapping`]: the TOML config and mapping files, validated all at once.
//! - [`toml_env`]: TOML parsing with unknown keys collected and `${VAR}` expanded (a leaf).
//! - [`source`]: ERP files (CSV, XLSX, XLS, ODS) → rows of cells.
//! - [`export_file`]: Yampi's export files (`.xls`/`.xlsx`, sniffed) → a bounded table of text.
//! - [`pipeline`]: feed → guards → plan → send → checkpoints, one module per stage.
//! - [`model`]: the shared data types (indexed SKU, stock entries, prices), a leaf module.
//! - [`index`]: the SKU index (store SKUs by key), refreshed incrementally.
//! - [`shop`]: the Yampi API client: throttling, retries, typed calls.
//! - [`publish`]: the built-in file server Yampi downloads import spreadsheets from.
//! - [`state`]: the sled state store (checkpoints, index, run records), behind one module.
//! - [`report`]: per-run reports (xlsx) and exit codes.
//! - [`xls`]: BIFF8 `.xls` writing (Yampi price imports), checked by reading back.
//! - [`web`], [`metrics`]: the daemon's listener: Prometheus metrics, `/healthz`, the status page.
//! - [`sim`]: the Yampi simulator used by the tests and `demo`.

pub mod app;
pub mod check_online;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod explain;
pub mod export_file;
pub mod exports;
pub mod index;
pub mod init;
pub mod mapping;
pub mod metrics;
pub mod model;
pub mod panics;
pub mod pipeline;
pub mod publish;
pub mod report;
pub mod runtime;
pub mod shop;
pub mod sim;
pub mod source;
pub mod state;
pub mod status;
pub mod systemd;
pub mod telemetry;
pub mod toml_env;
pub mod util;
pub mod web;
pub mod xls;
