//! The shipped systemd units pass `systemd-analyze verify` (CI installs systemd when missing).

use std::process::Command;

#[test]
fn units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed here; the units were not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_yampi-sync");
    let mut units = Vec::new();
    for name in [
        "yampi-sync.service",
        "yampi-sync-once.service",
        "yampi-sync-once.timer",
    ] {
        let text = std::fs::read_to_string(format!("systemd/{name}")).unwrap();
        // verify checks that ExecStart's binary exists: point it at the one just built.
        let path = dir.path().join(name);
        std::fs::write(&path, text.replace("/usr/local/bin/yampi-sync", bin)).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let relevant: Vec<&str> = text.lines().filter(|l| l.contains("yampi-sync")).collect();
    assert!(relevant.is_empty(), "{text}");
    let unit = std::fs::read_to_string("systemd/yampi-sync.service").unwrap();
    for needle in [
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
        "EnvironmentFile=",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(needle), "{needle}");
    }
}
