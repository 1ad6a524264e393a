//! The shipped examples stay valid: every file in config/ and mappings/ loads.

use std::path::Path;

#[test]
fn the_example_config_and_mappings_load() {
    // SAFETY: this test binary has a single test; nothing else reads the environment.
    unsafe {
        std::env::set_var("YAMPI_USER_TOKEN", "example-token");
        std::env::set_var("YAMPI_USER_SECRET_KEY", "example-secret");
    }
    let settings = yampi_sync::config::load(Path::new("config/yampi-sync.toml"), None)
        .unwrap_or_else(|e| panic!("config/yampi-sync.toml: {e}"));
    let kinds: Vec<&str> = settings.jobs.iter().map(|j| j.kind.as_str()).collect();
    // The batch edit is shipped commented out: a new install must not change prices by itself.
    assert_eq!(kinds, ["stock", "price"]);
    assert!(settings.jobs.iter().all(|j| j.schedule.is_some()));
    assert_eq!(settings.stores[0].user_token.expose(), "example-token");

    // Uncommented as its comment says, the example batch edit is valid too.
    let text = std::fs::read_to_string("config/yampi-sync.toml").unwrap();
    let at = text
        .find("# [[job]]\n# name = \"black-friday\"")
        .expect("the example batch edit is there, commented out");
    let uncommented: String = text[at..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let full = format!("{}{uncommented}\n", &text[..at]);
    let mut errors = Vec::new();
    let with_edit = yampi_sync::config::from_str(
        &full,
        Path::new("config/yampi-sync.toml"),
        None,
        &mut errors,
    )
    .unwrap_or_else(|| panic!("{errors:?}"));
    assert!(errors.is_empty(), "{errors:?}");
    let edit_job = with_edit.jobs.last().unwrap();
    assert_eq!(edit_job.kind.as_str(), "batch_edit");
    assert_eq!(edit_job.max_lateness, std::time::Duration::from_secs(3600));

    for entry in std::fs::read_dir("mappings")
        .unwrap()
        .chain(std::fs::read_dir("config/demo").unwrap())
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") && !path.ends_with("yampi-sync.toml") {
            let mut errors = Vec::new();
            let m = yampi_sync::mapping::load(&path, &mut errors);
            assert!(
                m.is_some() && errors.is_empty(),
                "{}: {errors:?}",
                path.display()
            );
        }
    }
}
