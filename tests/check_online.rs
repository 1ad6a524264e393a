//! `check` asks the store (unless `--offline`): a wrong token, alias, stock id or `match` is named
//! before any run, and a store that cannot be reached is a warning, not an error.

mod support;

use std::process::Output;

use support::*;

async fn env_with_feed() -> Env {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (1, 1)));
    env
}

/// `check` on the env's config after `edit` changed its text.
fn check_edited(env: &Env, edit: impl Fn(String) -> String, args: &[&str]) -> Output {
    let mut cmd = env.command(&[]);
    let path = env.path("yampi-sync.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
    cmd.arg("check").args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_config_passes_the_online_check_with_a_few_reads_and_no_write() {
    let env = env_with_feed().await;
    let out = env.run_binary(&["check"]);
    assert_exit(&out, 0);
    let requests = env.sim.requests();
    assert!(!requests.is_empty(), "the store was asked");
    assert!(requests.len() <= 6, "a few reads only: {}", requests.len());
    assert!(requests.iter().all(|r| r.method == "GET"), "reads only");

    env.sim.clear_requests();
    assert_exit(&env.run_binary(&["check", "--offline"]), 0);
    assert!(env.sim.requests().is_empty(), "--offline asks nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_names_the_credentials() {
    let env = env_with_feed().await;
    let out = env
        .command(&["check"])
        .env("YS_TEST_TOKEN", "wrong-token")
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let text = output_text(&out);
    assert!(text.contains("user_token"), "{text}");
    assert!(
        !text.contains("wrong-token"),
        "the secret is not echoed: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_alias_names_the_alias() {
    let env = env_with_feed().await;
    let out = check_edited(
        &env,
        |t| t.replace("alias = \"loja-teste\"", "alias = \"loja-errada\""),
        &[],
    );
    assert_exit(&out, 2);
    let text = output_text(&out);
    assert!(
        text.contains("`alias`") && text.contains("loja-errada"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_id_the_store_lacks_is_named_with_the_stocks_it_has() {
    let mut env = env_with_feed().await;
    env.mapping = env
        .mapping
        .replace("\"2\" = \"Saldo CD\"", "\"7\" = \"Saldo CD\"");
    let out = env.run_binary(&["check"]);
    assert_exit(&out, 2);
    let text = output_text(&out);
    assert!(
        text.contains("stock_id 7") && text.contains("check `stock_id`"),
        "{text}"
    );
    assert!(
        text.contains("1 \""),
        "the store's stocks are listed: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_match_nothing_name_match_and_key() {
    let mut env = env_with_feed().await;
    env.mapping = env
        .mapping
        .replace("match = \"sku\"", "match = \"barcode\"");
    let out = env.run_binary(&["check"]);
    assert_exit(&out, 2);
    let text = output_text(&out);
    assert!(
        text.contains("check `match`") && text.contains("`barcode`"),
        "{text}"
    );
    assert_eq!(env.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_reached_is_a_warning() {
    let env = env_with_feed().await;
    let base = env.sim.base_url();
    let out = check_edited(&env, |t| t.replace(&base, "http://127.0.0.1:9/v2"), &[]);
    assert_exit(&out, 0);
    assert!(
        output_text(&out).contains("warning: store loja: cannot reach"),
        "{}",
        output_text(&out)
    );
}
