//! The `[publish]` file server: what it serves, what it refuses, what survives a restart, what
//! it logs, and what `check` says about the section. Requests are written by hand on a raw TCP
//! socket so that paths like `/../x` or `/%2e%2e/` reach the server exactly as sent.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yampi_sync::config::PublishSettings;
use yampi_sync::publish::{PublishServer, Published};

const BASE: &str = "https://sync.example.test/arquivos";

fn settings(ttl: Duration) -> PublishSettings {
    PublishSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_base_url: BASE.to_string(),
        file_ttl: ttl,
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request with `target` sent byte for byte; the whole answer (the server closes).
async fn request(server: &PublishServer, method: &str, target: &str) -> Answer {
    let mut s = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: sync.example.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The path part of a published URL (`/arquivos/<token>/<name>`).
fn path_of(p: &Published) -> String {
    p.url
        .strip_prefix("https://sync.example.test")
        .expect("the URL starts with public_base_url")
        .to_string()
}

/// A file of `len` varied bytes (more than one read chunk when large).
fn sample_file(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let p = dir.join("source.xls");
    std::fs::write(&p, &bytes).unwrap();
    (p, bytes)
}

#[tokio::test]
async fn get_serves_the_exact_bytes_and_head_the_length() {
    let tmp = tempfile::tempdir().unwrap();
    let server = PublishServer::start(&settings(Duration::from_secs(600)), tmp.path().join("p"))
        .await
        .unwrap();
    let (file, bytes) = sample_file(tmp.path(), 200_000);
    let p = server.publish(&file, "precos-1.xls").unwrap();
    assert!(p.url.starts_with(&format!("{BASE}/")), "{}", p.url);
    assert!(p.url.ends_with("/precos-1.xls") && !p.url.contains('?'));
    assert!(server.is_published(&p.token));

    // With the base URL's path (a proxy that forwards it) and without (a proxy that strips it).
    let with_prefix = path_of(&p);
    let without = with_prefix.strip_prefix("/arquivos").unwrap().to_string();
    for target in [&with_prefix, &without] {
        let a = request(&server, "GET", target).await;
        assert_eq!(a.status, 200, "{target}");
        assert_eq!(a.header("content-type"), Some("application/vnd.ms-excel"));
        assert_eq!(a.header("content-length"), Some("200000"));
        assert!(a.body == bytes, "GET {target} gives the published bytes");
    }
    let head = request(&server, "HEAD", &with_prefix).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("200000"));
    assert!(head.body.is_empty());

    // The copy is what is served: changing the source afterwards changes nothing.
    std::fs::write(&file, b"changed").unwrap();
    assert!(request(&server, "GET", &with_prefix).await.body == bytes);
    server.shutdown().await;
}

#[tokio::test]
async fn the_token_holds_at_least_128_random_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let server = PublishServer::start(&settings(Duration::from_secs(600)), tmp.path().join("p"))
        .await
        .unwrap();
    let (file, _) = sample_file(tmp.path(), 10);
    let a = server.publish(&file, "a.xls").unwrap();
    let b = server.publish(&file, "a.xls").unwrap();
    assert_ne!(a.token, b.token);
    for p in [&a, &b] {
        assert_eq!(p.token.len() % 2, 0);
        let decoded: Vec<u8> = (0..p.token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&p.token[i..i + 2], 16).expect("hex"))
            .collect();
        assert!(decoded.len() * 8 >= 128, "{} bits", decoded.len() * 8);
        assert_eq!(p.url, format!("{BASE}/{}/a.xls", p.token));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unpublish_answers_404_and_deletes_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let server = PublishServer::start(&settings(Duration::from_secs(600)), dir.clone())
        .await
        .unwrap();
    let (file, _) = sample_file(tmp.path(), 1_000);
    let p = server.publish(&file, "a.xls").unwrap();
    let keep = server.publish(&file, "b.xls").unwrap();
    assert!(dir.join(&p.token).join("a.xls").is_file());
    server.unpublish(&p.token).unwrap();
    assert!(!server.is_published(&p.token));
    assert!(!format!("{p:?}").contains(&p.token), "{p:?}");
    assert_eq!(request(&server, "GET", &path_of(&p)).await.status, 404);
    assert!(!dir.join(&p.token).exists(), "the file is gone from disk");
    assert!(!dir.join(format!("{}.json", p.token)).exists());
    server.unpublish(&p.token).unwrap();
    server.unpublish("../../etc").unwrap();
    // The other file is untouched.
    assert_eq!(request(&server, "GET", &path_of(&keep)).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_file_answers_404_and_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let server = PublishServer::start(&settings(Duration::from_millis(300)), dir.clone())
        .await
        .unwrap();
    let (file, _) = sample_file(tmp.path(), 1_000);
    let p = server.publish(&file, "a.xls").unwrap();
    let on_disk = dir.join(&p.token);
    support::poll_until(
        "the sweep deletes the expired file",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || !on_disk.exists(),
    )
    .await;
    assert!(chrono::Utc::now() >= p.expires_at);
    assert!(!server.is_published(&p.token));
    assert_eq!(request(&server, "GET", &path_of(&p)).await.status, 404);
    assert!(!dir.join(format!("{}.json", p.token)).exists());
    server.shutdown().await;
}

#[tokio::test]
async fn a_restarted_server_serves_the_same_url_and_drops_expired_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (file, bytes) = sample_file(tmp.path(), 5_000);
    let first = PublishServer::start(&settings(Duration::from_secs(600)), dir.clone())
        .await
        .unwrap();
    let p = first.publish(&file, "precos.xls").unwrap();
    first.shutdown().await;

    let second = PublishServer::start(&settings(Duration::from_secs(600)), dir.clone())
        .await
        .unwrap();
    assert!(second.is_published(&p.token));
    let a = request(&second, "GET", &path_of(&p)).await;
    assert_eq!(a.status, 200);
    assert!(a.body == bytes);
    second.shutdown().await;

    // A file whose expiry passed while nothing ran is deleted at start, sidecar and all; a
    // half-written one (no sidecar) too.
    let short = PublishServer::start(&settings(Duration::from_millis(200)), dir.clone())
        .await
        .unwrap();
    let gone = short.publish(&file, "old.xls").unwrap();
    short.shutdown().await;
    let orphan = "0123456789abcdef0123456789abcdef0123456789abcdef";
    std::fs::create_dir_all(dir.join(orphan)).unwrap();
    std::fs::write(dir.join(orphan).join(".x.xls.part"), b"half").unwrap();
    std::fs::write(dir.join("keep-me.txt"), b"not ours").unwrap();
    while chrono::Utc::now() <= gone.expires_at {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let third = PublishServer::start(&settings(Duration::from_secs(600)), dir.clone())
        .await
        .unwrap();
    assert!(!third.is_published(&gone.token));
    assert!(!dir.join(&gone.token).exists());
    assert!(!dir.join(format!("{}.json", gone.token)).exists());
    assert!(!dir.join(orphan).exists());
    assert!(dir.join("keep-me.txt").exists(), "files not ours stay");
    assert!(third.is_published(&p.token), "the live one is still served");
    third.shutdown().await;
}

#[tokio::test]
async fn nothing_but_the_exact_path_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let server = PublishServer::start(&settings(Duration::from_secs(600)), tmp.path().join("p"))
        .await
        .unwrap();
    let (file, _) = sample_file(tmp.path(), 100);
    let p = server.publish(&file, "a.xls").unwrap();
    let t = &p.token;
    for target in [
        "/".to_string(),
        "/arquivos".to_string(),
        "/arquivos/".to_string(),
        format!("/{t}"),
        format!("/{t}/"),
        format!("/{t}/other.xls"),
        format!("/{t}/a.xlsx"),
        "/../x".to_string(),
        format!("/../{t}/a.xls"),
        format!("/%2e%2e/{t}/a.xls"),
        format!("/{t}/%2e%2e/a.xls"),
        format!("/{t}%2fa.xls"),
        format!("/{t}/%61.xls"),
        format!("//{t}/a.xls"),
        format!("/{t}//a.xls"),
        format!("/{t}/a.xls/"),
        format!("/{t}/a.xls?a=1"),
        format!("/{t}/a.xls?"),
        format!("/arquivos/{t}/a.xls?a=1"),
        format!("/arquivos/arquivos/{t}/a.xls"),
        format!("/{}/a.xls", t.to_uppercase()),
        format!("/{}/a.xls", &t[..t.len() - 1]),
    ] {
        let a = request(&server, "GET", &target).await;
        assert_eq!(a.status, 404, "GET {target}");
        assert!(a.body.is_empty(), "no listing for {target}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let a = request(&server, method, &path_of(&p)).await;
        assert!(matches!(a.status, 404 | 405), "{method}: {}", a.status);
    }
    assert_eq!(request(&server, "GET", &path_of(&p)).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn publish_refuses_names_that_are_not_plain_xls_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let server = PublishServer::start(&settings(Duration::from_secs(600)), dir.clone())
        .await
        .unwrap();
    let (file, _) = sample_file(tmp.path(), 10);
    for bad in [
        "../a.xls",
        "a/b.xls",
        "a.xlsx",
        "a b.xls",
        ".xls",
        "a.xls?x=1",
    ] {
        let e = server.publish(&file, bad).unwrap_err();
        assert!(e.to_string().contains(".xls"), "{e}");
    }
    let e = server
        .publish(&tmp.path().join("missing.xls"), "a.xls")
        .unwrap_err();
    assert!(e.to_string().contains("missing.xls"), "{e}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "a failed publish leaves nothing behind"
    );
    server.shutdown().await;
}

/// Collects what the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the server's tasks run where the test's default subscriber is set.
#[tokio::test(flavor = "current_thread")]
async fn fetches_are_logged_without_the_whole_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let tmp = tempfile::tempdir().unwrap();
    let server = PublishServer::start(&settings(Duration::from_secs(600)), tmp.path().join("p"))
        .await
        .unwrap();
    let (file, _) = sample_file(tmp.path(), 1_234);
    let p = server.publish(&file, "a.xls").unwrap();
    let t = p.token.clone();
    assert_eq!(request(&server, "GET", &path_of(&p)).await.status, 200);
    for probe in [
        format!("/{t}/other.xls"),
        format!("/x/{t}"),
        format!("/{t}/a.xls?{t}"),
    ] {
        assert_eq!(request(&server, "GET", &probe).await.status, 404);
    }
    server.unpublish(&t).unwrap();
    let debug = format!("{server:?}");
    server.shutdown().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("publish: fetch"), "{log}");
    let short = format!("{}…", &t[..4]);
    assert!(
        log.contains(&format!("/arquivos/{short}/a.xls")),
        "the path with the token cut: {log}"
    );
    assert!(
        log.contains("status=200") && log.contains("bytes=1234"),
        "{log}"
    );
    assert!(
        log.contains("status=404") && log.contains("client=127.0.0.1:"),
        "{log}"
    );
    assert!(
        !log.contains(&t),
        "the whole token never reaches the log: {log}"
    );
    assert!(!debug.contains(&t), "{debug}");
}

// ---- `check` on the [publish] section -------------------------------------------------------

fn with_publish(env: &mut support::Env, section: &str) {
    env.job_extra = format!("\n[publish]\n{section}\n");
}

#[tokio::test]
async fn check_accepts_a_good_publish_section() {
    let mut env = support::Env::start(support::small_catalog()).await;
    let port = support::free_port();
    with_publish(
        &mut env,
        &format!("listen = \"127.0.0.1:{port}\"\npublic_base_url = \"{BASE}\"\nfile_ttl = \"2h\""),
    );
    let out = env.run_binary(&["check"]);
    support::assert_exit(&out, 0);
}

#[tokio::test]
async fn check_refuses_a_bad_public_base_url_naming_the_key() {
    for url in [
        "ftp://sync.example.test/arquivos",
        "sync.example.test/arquivos",
        "https://sync.example.test/arquivos?x=1",
    ] {
        let mut env = support::Env::start(support::small_catalog()).await;
        with_publish(
            &mut env,
            &format!("listen = \"127.0.0.1:8089\"\npublic_base_url = \"{url}\""),
        );
        let out = env.run_binary(&["check"]);
        support::assert_exit(&out, 2);
        let text = support::output_text(&out);
        assert!(text.contains("`publish.public_base_url`"), "{text}");
        assert!(
            !text.contains("unknown key"),
            "the section is known: {text}"
        );
    }
}

#[tokio::test]
async fn check_refuses_a_bad_ttl_an_unknown_key_and_an_unparsable_listen() {
    for (section, needle) in [
        (
            format!("listen = \"127.0.0.1:8089\"\npublic_base_url = \"{BASE}\"\nfile_ttl = \"0s\""),
            "`publish.file_ttl`",
        ),
        (
            format!("listen = \"127.0.0.1:8089\"\npublic_base_url = \"{BASE}\"\nttl = \"1h\""),
            "unknown key `publish.ttl`",
        ),
        (
            format!("listen = \"localhost\"\npublic_base_url = \"{BASE}\""),
            "`publish.listen`",
        ),
    ] {
        let mut env = support::Env::start(support::small_catalog()).await;
        with_publish(&mut env, &section);
        let out = env.run_binary(&["check"]);
        support::assert_exit(&out, 2);
        let text = support::output_text(&out);
        assert!(text.contains(needle), "{needle}: {text}");
        let unknown = text.matches("unknown key").count();
        assert_eq!(
            unknown,
            usize::from(needle.starts_with("unknown")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn check_refuses_a_listen_address_that_cannot_be_bound() {
    let mut env = support::Env::start(support::small_catalog()).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    with_publish(
        &mut env,
        &format!("listen = \"127.0.0.1:{port}\"\npublic_base_url = \"{BASE}\""),
    );
    let out = env.run_binary(&["check"]);
    support::assert_exit(&out, 2);
    let text = support::output_text(&out);
    assert!(text.contains("`publish.listen`"), "{text}");
    assert!(text.contains(&port.to_string()), "{text}");

    // The same address held while the state dir is locked is the running daemon itself.
    let state = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    let out = env.run_binary(&["check"]);
    support::assert_exit(&out, 0);
    assert!(
        support::output_text(&out).contains("presumably by the running daemon"),
        "{}",
        support::output_text(&out)
    );
    drop(state);
    drop(taken);
}
