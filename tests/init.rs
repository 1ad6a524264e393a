//! `yampi-sync init --from FILE` writes a config and mapping that `check` accepts, guessed from a
//! sample export, and never overwrites a file.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yampi-sync"));
    c.env("YAMPI_USER_TOKEN", "t")
        .env("YAMPI_USER_SECRET_KEY", "k")
        .env_remove("YAMPI_SYNC_CONFIG");
    c
}

#[test]
fn init_from_the_demo_export_writes_a_config_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "init",
            "--from",
            "config/demo/estoque-1.csv",
            "--alias",
            "loja-demo",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("check"), "says the next command: {stdout}");

    let mapping = std::fs::read_to_string(dir.path().join("mappings/stock.toml")).unwrap();
    assert!(mapping.contains("key = \"Código\""), "{mapping}");
    assert!(
        mapping.contains("stocks = { \"1\" = \"Saldo Loja\", \"2\" = \"Saldo CD\" }"),
        "one column per warehouse: {mapping}"
    );
    assert!(mapping.contains("decimal = \"comma\""), "{mapping}");
    assert!(mapping.contains("UTF-8 with ';'"), "{mapping}");
    assert!(
        !dir.path().join("mappings/price.toml").exists(),
        "no price column in the sample"
    );
    let config_path = dir.path().join("yampi-sync.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(
        config.contains("estoque-*.csv"),
        "the series, not the one file: {config}"
    );
    assert!(config.contains("alias = \"loja-demo\""), "{config}");

    let check = bin()
        .arg("--config")
        .arg(&config_path)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check accepts what init wrote: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // A second init never overwrites.
    std::fs::write(dir.path().join("mappings/stock.toml"), "# mine\n").unwrap();
    let again = bin()
        .args(["init", "--from", "config/demo/estoque-1.csv", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mappings/stock.toml")).unwrap(),
        "# mine\n"
    );
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), config);
}

#[test]
fn init_writes_a_price_job_from_a_price_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precos-2026-11-30.csv");
    std::fs::write(&file, "SKU;Nome;Preço Venda;Preço Promocional;Custo\nA1;x;12,50;10,00;5,00\nA2;y;1.299,90;;600,00\n").unwrap();
    let out = bin()
        .args(["init", "--from"])
        .arg(&file)
        .arg("--dir")
        .arg(dir.path().join("cfg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mapping = std::fs::read_to_string(dir.path().join("cfg/mappings/price.toml")).unwrap();
    assert!(
        mapping.contains("price_sale = \"Preço Venda\""),
        "{mapping}"
    );
    assert!(
        mapping.contains("# price_discount = \"Preço Promocional\""),
        "{mapping}"
    );
    assert!(
        mapping.contains("# round_to"),
        "options stay commented out: {mapping}"
    );
    let config_path = dir.path().join("cfg/yampi-sync.toml");
    let check = bin()
        .arg("--config")
        .arg(&config_path)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let missing = bin()
        .args(["init", "--from"])
        .arg(dir.path().join("nope.csv"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
