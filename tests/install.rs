//! README's Install section works as written: its commands, run in a temporary root (absolute
//! paths prefixed by it, `sudo` dropped, the freshly built binary instead of `cargo build`), end
//! with a `check` that passes.

use std::path::Path;
use std::process::Command;

/// The first `sh` block under `## Install`.
fn install_block(readme: &str) -> String {
    let section = &readme[readme
        .find("\n## Install\n")
        .expect("README has an Install section")..];
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let len = section[start..].find("```").expect("the block ends");
    section[start..start + len].to_string()
}

/// The block as it would run under `root`: only a prefix is added to the paths it installs to.
fn rooted(block: &str, root: &Path, binary: &Path) -> String {
    let root = root.display().to_string();
    block
        .lines()
        .filter(|l| l.trim() != "cargo build --release")
        .map(|l| l.strip_prefix("sudo ").unwrap_or(l))
        .map(|l| {
            l.replace("target/release/yampi-sync", &binary.display().to_string())
                .replace("/etc/", &format!("{root}/etc/"))
                .replace("/usr/local/bin/", &format!("{root}/usr/local/bin/"))
                .replace("sudo sh -c", "sh -c")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_install_steps_work_literally_and_end_with_a_passing_check() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let block = install_block(&readme);
    assert!(
        block.contains("mappings/price.toml"),
        "both mappings are installed"
    );
    assert!(
        block.trim_end().ends_with("check'"),
        "the steps end with check"
    );

    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("usr/local/bin")).unwrap();
    let script = rooted(
        &block,
        root.path(),
        Path::new(env!("CARGO_BIN_EXE_yampi-sync")),
    );
    let path = format!(
        "{}:{}",
        root.path().join("usr/local/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-e")
        .arg("-c")
        .arg(&script)
        .env("PATH", path)
        .env_remove("YAMPI_USER_TOKEN")
        .env_remove("YAMPI_USER_SECRET_KEY")
        .env_remove("YAMPI_SYNC_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Install steps failed:\n{script}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("OK"), "check says OK: {stdout}");
    assert!(!stderr.contains("error"), "no errors: {stderr}");
    let etc = root.path().join("etc/yampi-sync");
    for f in [
        "yampi-sync.toml",
        "mappings/stock.toml",
        "mappings/price.toml",
    ] {
        assert!(etc.join(f).is_file(), "{f} installed");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(etc.join("credentials.env"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "credentials.env stays private");
}
