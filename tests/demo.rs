//! README's first command: `yampi-sync demo` works on a fresh machine and shows what it claims.

use std::process::Command;

#[test]
fn the_demo_runs_and_shows_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_yampi-sync"))
        .arg("--state-dir")
        .arg(dir.path())
        .arg("demo")
        .env_remove("YAMPI_SYNC_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1) First sync"), "{stdout}");
    assert!(
        stdout.contains("the simulator received 5 stocks/sync request(s) for this export"),
        "{stdout}"
    );
    // The demo's config leaves `language` at its default: Portuguese.
    assert!(
        stdout.contains("rejeitada:") && stdout.contains("sem correspondência:"),
        "{stdout}"
    );
    assert!(stdout.contains("linhas lidas"), "{stdout}");
    assert!(
        stdout.contains("(429 answers from the simulator: 0)"),
        "{stdout}"
    );
}
