//! Command line (README.md, Commands): `--run-once`, `check`, `status`, `explain`, `demo`, `resolve`,
//! `completions`, `man`, and the global options.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "yampi-sync",
    version,
    about = "Keeps a Yampi store's stock and prices equal to what the ERP says",
    after_help = "Exit codes: 0 every job succeeded; 2 bad arguments, config, mapping or source (nothing sent); \
                  3 a job failed as a whole (store unreachable, auth refused, guard tripped); \
                  4 jobs ran but some items were rejected (see the report)."
)]
pub struct Cli {
    /// Config file.
    #[arg(
        long,
        global = true,
        env = "YAMPI_SYNC_CONFIG",
        default_value = "config/yampi-sync.toml"
    )]
    pub config: PathBuf,

    /// State directory (overrides `state_dir` in the config).
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,

    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q warnings and errors only, -qq errors only).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,

    /// Run the jobs once, then exit (default: run as a daemon, every job on its schedule).
    #[arg(long)]
    pub run_once: bool,

    /// With --run-once: only this job (repeatable).
    #[arg(long = "job", value_name = "NAME", requires = "run_once")]
    pub jobs: Vec<String>,

    /// With --run-once: compute and report every change, send no write.
    #[arg(long, requires = "run_once")]
    pub dry_run: bool,

    /// With --run-once: push every mapped value, not only what changed.
    #[arg(long, requires = "run_once")]
    pub full: bool,

    /// Daemon: after SIGTERM/SIGINT, how long runs in progress may take to finish their
    /// requests in flight before the process exits anyway.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub grace_secs: u64,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate config, mappings and sources, and (unless --offline) ask each store whether the
    /// credentials, alias, stock ids and key match work; exit 2 on any error. Sends no write.
    Check {
        /// Do not contact the stores (what systemd's ExecStartPre/ExecReload run).
        #[arg(long)]
        offline: bool,
    },
    /// Last run of each job and its checkpoints.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Why a SKU has the value it has: index entry, source row and cells, each rule, the value
    /// last pushed and when, the last run's report rows, writes in doubt. Read-only.
    Explain {
        /// The stock or price job.
        job: String,
        /// The key as the file writes it (matched like the run: trimmed, any case).
        key: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run the embedded default against the bundled Yampi simulator (no account, no network).
    Demo,
    /// Propose a config and mapping from a sample ERP export (never overwrites a file).
    Init {
        /// The sample export (CSV, XLSX, XLS or ODS).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Where to write yampi-sync.toml and mappings/.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Sheet to read (spreadsheets; default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// Which jobs to write (default: from the columns found).
        #[arg(long, value_enum)]
        kind: Option<crate::init::InitKind>,
        /// The key column (default: guessed, e.g. Código, SKU, EAN).
        #[arg(long, value_name = "COLUMN")]
        key: Option<String>,
        /// A quantity column; repeat it once per warehouse (default: guessed).
        #[arg(long, value_name = "COLUMN")]
        quantity: Vec<String>,
        /// The sale price column (default: guessed).
        #[arg(long, value_name = "COLUMN")]
        price: Option<String>,
        /// The store's Yampi alias.
        #[arg(long)]
        alias: Option<String>,
    },
    /// Print a shell completion script (for example `yampi-sync completions bash >
    /// /etc/bash_completion.d/yampi-sync`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; for example `yampi-sync man > /usr/local/share/man/man1/yampi-sync.1`).
    Man,
    /// Settle a batch edit occurrence whose outcome is unknown, after checking the store.
    /// Exactly one of --applied and --not-applied says what the store shows.
    #[command(group = clap::ArgGroup::new("outcome").required(true).multiple(false))]
    Resolve {
        /// The batch_edit job.
        job: String,
        /// The occurrence, as `status` and the log show it.
        occurrence: String,
        /// The edit did reach the store: never send it again.
        #[arg(long, group = "outcome")]
        applied: bool,
        /// The edit did not reach the store: the next run sends it.
        #[arg(long, group = "outcome")]
        not_applied: bool,
    },
}

/// Writes the completion script for `shell` (generated from these clap definitions).
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "yampi-sync", out);
}

/// Writes the man page (roff, section 1) generated from these clap definitions.
pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(out)
}
