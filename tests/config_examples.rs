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
    assert_eq!(kinds, ["stock", "price", "batch_edit"]);
    assert!(settings.jobs.iter().all(|j| j.schedule.is_some()));
    assert_eq!(settings.stores[0].user_token.expose(), "example-token");

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
