//! `yampi-sync`: parse the command line, start logging, run the command, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = yampi_sync::cli::Cli::parse();
    // `--run-once` and `demo` print the summary lines on stdout themselves.
    let summaries_on_stdout = (cli.command.is_none() && cli.run_once)
        || matches!(cli.command, Some(yampi_sync::cli::Command::Demo));
    yampi_sync::telemetry::init(cli.log_format, cli.verbose, cli.quiet, summaries_on_stdout);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(3);
        }
    };
    let code = runtime.block_on(yampi_sync::app::main(cli));
    std::process::ExitCode::from(code as u8)
}
