//! The built-in file server that Yampi downloads import spreadsheets from
//! (`POST catalog/skus/import {"file_url": URL}`).
//!
//! A published file lives at `<dir>/<token>/<name>` with a sidecar `<dir>/<token>.json` (name,
//! size, expiry) written atomically after the copy: the sidecar is the commit point, so after a
//! restart or a kill the files whose sidecar is intact are served again until their expiry, and
//! anything half-written is deleted. The publish dir, not the state store, is the truth for what
//! is served.
//!
//! Serving rules: only `GET`/`HEAD` of exactly `/<token>/<name>` (or the same under the path of
//! `public_base_url`, for a reverse proxy that does not strip it) for a live, unexpired file.
//! Nothing is decoded or joined into a file-system path from the request: the raw path is
//! compared with what was published, so `..`, `%2e%2e`, `%2f`, doubled slashes or a query
//! string simply match nothing and get 404. Other methods get 405. The token is a capability:
//! it is never logged whole.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::PublishSettings;

/// Random bytes in a token: 192 bits, written as 48 lowercase hex digits (URL-safe as is).
pub const TOKEN_BYTES: usize = 24;
/// Longest file name accepted by `publish`.
const MAX_NAME_LEN: usize = 120;
/// A sidecar is a few hundred bytes; a larger one is not ours.
const MAX_SIDECAR_BYTES: u64 = 4_096;
/// Connections served at once; more are closed unanswered (Yampi fetches one file at a time).
const MAX_CONNECTIONS: usize = 64;
/// A client that has not sent its request headers by then is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection lives longer than this, however slowly it reads.
const CONNECTION_LIMIT: Duration = Duration::from_secs(15 * 60);
/// How long `shutdown` waits for responses in flight before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const CONTENT_TYPE_XLS: &str = "application/vnd.ms-excel";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "the file server cannot listen on {addr} (`publish.listen`): {source}; free the port or choose another"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the publish dir {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot publish \"{name}\": a published name is a plain file name of letters, digits, '.', '_' or '-' (at most {MAX_NAME_LEN}, not starting with '.') ending in .xls"
    )]
    BadName { name: String },
    #[error("cannot publish {}: {source}", file.display())]
    Copy {
        file: PathBuf,
        source: std::io::Error,
    },
    /// `path` has its token cut short (`short_token`).
    #[error("cannot remove the published file {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One published file, as `publish` returns it. Its Debug shows the token cut short.
#[derive(Clone, PartialEq, Eq)]
pub struct Published {
    pub token: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("token", &short_token(&self.token))
            .field(
                "url",
                &self.url.replace(&self.token, &short_token(&self.token)),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What the sidecar `<token>.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    name: String,
    size: u64,
    expires_at: DateTime<Utc>,
}

/// Clone-able handle on the running server.
#[derive(Clone)]
pub struct PublishServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PublishServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No tokens: they are capabilities.
        f.debug_struct("PublishServer")
            .field("local_addr", &self.inner.local_addr)
            .field("dir", &self.inner.dir)
            .finish()
    }
}

struct Inner {
    dir: PathBuf,
    public_base_url: String,
    prefix: String,
    ttl: Duration,
    local_addr: SocketAddr,
    entries: Mutex<HashMap<String, Entry>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PublishServer {
    /// Binds `listen`, serves files kept under `dir` (state_dir/publish). Files already there
    /// from an earlier process are served again until their expiry (restart/kill resume);
    /// expired ones are deleted at start.
    pub async fn start(settings: &PublishSettings, dir: PathBuf) -> Result<Self, PublishError> {
        let dir_err = |source| PublishError::Dir {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(dir_err)?;
        let entries = load_dir(&dir, settings.file_ttl, Utc::now()).map_err(dir_err)?;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| PublishError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| PublishError::Bind {
            addr: settings.listen,
            source,
        })?;
        let inner = Arc::new(Inner {
            dir,
            public_base_url: settings.public_base_url.trim_end_matches('/').to_string(),
            prefix: settings.path_prefix(),
            ttl: settings.file_ttl,
            local_addr,
            entries: Mutex::new(entries),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        inner
            .tracker
            .spawn(accept_loop(listener, Arc::clone(&inner)));
        inner.tracker.spawn(sweep_loop(Arc::clone(&inner)));
        tracing::info!(
            listen = %local_addr,
            base = %inner.public_base_url,
            files = lock(&inner.entries).len(),
            "publish: file server listening"
        );
        Ok(Self { inner })
    }

    /// Copies `file` in under a fresh token (≥ 128 random bits, URL-safe) and returns its public
    /// URL `public_base_url/<token>/<name>` (no query string). `name` must be a plain file name
    /// ending in `.xls`. Blocking file I/O (copy and fsync): from async code, for a large file,
    /// call it through `spawn_blocking`.
    pub fn publish(&self, file: &Path, name: &str) -> Result<Published, PublishError> {
        if !is_name(name) {
            return Err(PublishError::BadName {
                name: name.chars().take(200).collect(),
            });
        }
        let token = new_token();
        let inner = &self.inner;
        let token_dir = inner.dir.join(&token);
        let copy_err = |source| PublishError::Copy {
            file: file.to_path_buf(),
            source,
        };
        let result = (|| {
            std::fs::create_dir(&token_dir)?;
            let part = token_dir.join(format!(".{name}.part"));
            let size = std::fs::copy(file, &part)?;
            std::fs::File::open(&part)?.sync_all()?;
            std::fs::rename(&part, token_dir.join(name))?;
            let expires_at = Utc::now() + chrono::Duration::from_std(inner.ttl).unwrap_or_default();
            let entry = Entry {
                name: name.to_string(),
                size,
                expires_at,
            };
            write_sidecar(&inner.dir, &token, &entry)?;
            Ok(entry)
        })();
        let entry = match result {
            Ok(e) => e,
            Err(e) => {
                let _ = std::fs::remove_file(sidecar_path(&inner.dir, &token));
                let _ = std::fs::remove_dir_all(&token_dir);
                return Err(copy_err(e));
            }
        };
        let published = Published {
            url: format!("{}/{token}/{name}", inner.public_base_url),
            token: token.clone(),
            expires_at: entry.expires_at,
        };
        tracing::info!(
            token = %short_token(&token),
            name,
            bytes = entry.size,
            expires_at = %entry.expires_at.to_rfc3339(),
            "publish: file published"
        );
        lock(&inner.entries).insert(token, entry);
        Ok(published)
    }

    /// Stops serving and deletes the file (404 from then on). Idempotent.
    pub fn unpublish(&self, token: &str) -> Result<(), PublishError> {
        // Nothing with another shape was ever published, and it must not reach a path.
        if !is_token(token) {
            return Ok(());
        }
        lock(&self.inner.entries).remove(token);
        remove_files(&self.inner.dir, token)
    }

    pub fn is_published(&self, token: &str) -> bool {
        lock(&self.inner.entries)
            .get(token)
            .is_some_and(|e| e.expires_at > Utc::now())
    }

    /// `public_base_url` without its trailing slash.
    pub fn public_base_url(&self) -> &str {
        &self.inner.public_base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Stops accepting, lets responses in flight finish (a few seconds at most), and returns.
    /// Published files stay on disk for the next start.
    pub async fn shutdown(self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.inner.tracker.wait()).await;
    }
}

/// `check`: can `listen` be bound? Binds and releases it. An address in use while this state
/// dir's lock is held is the running daemon's own server: a warning, not an error.
pub fn probe_listen(
    settings: &PublishSettings,
    state_dir: &Path,
    file: &Path,
) -> Result<Option<String>, String> {
    match std::net::TcpListener::bind(settings.listen) {
        Ok(l) => {
            drop(l);
            Ok(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && state_dir_is_locked(state_dir) => {
            Ok(Some(format!(
                "`publish.listen` {} is in use, presumably by the running daemon that holds {} (not checked further)",
                settings.listen,
                state_dir.display()
            )))
        }
        Err(e) => Err(format!(
            "{}: `publish.listen` {} cannot be bound ({e}); free the port or choose another",
            file.display(),
            settings.listen
        )),
    }
}

/// Whether another process holds the state dir's single-instance lock (`state::StateStore`).
fn state_dir_is_locked(state_dir: &Path) -> bool {
    let Ok(f) = std::fs::File::open(state_dir.join("yampi-sync.lock")) else {
        return false;
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(_) => false,
    }
}

/// A fresh capability: `TOKEN_BYTES` from the thread-local CSPRNG (ChaCha, seeded by the OS).
fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The shape `new_token` writes; nothing else is ever looked up or turned into a path.
pub fn is_token(s: &str) -> bool {
    s.len() == TOKEN_BYTES * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A plain file name that needs no escaping in a URL path and ends in `.xls`.
fn is_name(s: &str) -> bool {
    s.len() <= MAX_NAME_LEN
        && s.len() > ".xls".len()
        && s.ends_with(".xls")
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The first 4 characters of a token and `…`: enough to tell files apart in a log.
pub fn short_token(token: &str) -> String {
    let head: String = token.chars().take(4).collect();
    format!("{head}…")
}

fn sidecar_path(dir: &Path, token: &str) -> PathBuf {
    dir.join(format!("{token}.json"))
}

/// Writes the sidecar to a temporary file, syncs it, renames it into place, syncs the dir.
fn write_sidecar(dir: &Path, token: &str, entry: &Entry) -> std::io::Result<()> {
    let tmp = dir.join(format!("{token}.json.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(entry).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, sidecar_path(dir, token))?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Deletes a token's sidecar first (it is what makes a file served after a restart), then its
/// file. Missing files are fine: this is also how a half-published token is cleaned up.
fn remove_files(dir: &Path, token: &str) -> Result<(), PublishError> {
    let short = short_token(token);
    let ignore_missing = |r: std::io::Result<()>, shown: PathBuf| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PublishError::Remove {
            path: shown,
            source: e,
        }),
        _ => Ok(()),
    };
    ignore_missing(
        std::fs::remove_file(sidecar_path(dir, token)),
        dir.join(format!("{short}.json")),
    )?;
    ignore_missing(std::fs::remove_dir_all(dir.join(token)), dir.join(short))
}

/// The files an earlier process published and that are still live; everything else of ours in
/// `dir` (expired, half-written, damaged sidecars) is deleted. Unknown entries are left alone.
fn load_dir(
    dir: &Path,
    ttl: Duration,
    now: DateTime<Utc>,
) -> std::io::Result<HashMap<String, Entry>> {
    let mut live = HashMap::new();
    let latest = now + chrono::Duration::from_std(ttl).unwrap_or_default();
    let mut tokens = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let file_name = item.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let token = name
            .strip_suffix(".json.tmp")
            .or_else(|| name.strip_suffix(".json"))
            .unwrap_or(name);
        if is_token(token) && !tokens.iter().any(|t: &String| t == token) {
            tokens.push(token.to_string());
        }
    }
    for token in tokens {
        let _ = std::fs::remove_file(dir.join(format!("{token}.json.tmp")));
        match read_sidecar(dir, &token) {
            Some(mut entry) if entry.expires_at > now => {
                // A shorter ttl configured since then applies to old files too.
                entry.expires_at = entry.expires_at.min(latest);
                live.insert(token, entry);
            }
            _ => {
                if let Err(e) = remove_files(dir, &token) {
                    tracing::warn!(token = %short_token(&token), "publish: {e}");
                }
            }
        }
    }
    Ok(live)
}

/// The sidecar of `token` if it is readable, names a valid file, and that file is there whole.
fn read_sidecar(dir: &Path, token: &str) -> Option<Entry> {
    let f = std::fs::File::open(sidecar_path(dir, token)).ok()?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(f, MAX_SIDECAR_BYTES + 1),
        &mut text,
    )
    .ok()?;
    if text.len() as u64 > MAX_SIDECAR_BYTES {
        return None;
    }
    let entry: Entry = serde_json::from_slice(&text).ok()?;
    if !is_name(&entry.name) {
        return None;
    }
    let size = std::fs::metadata(dir.join(token).join(&entry.name))
        .ok()?
        .len();
    (size == entry.size).then_some(entry)
}

/// Deletes expired files every quarter of the ttl (at most a minute apart).
async fn sweep_loop(inner: Arc<Inner>) {
    let every = (inner.ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => break,
            _ = tick.tick() => sweep(&inner, Utc::now()),
        }
    }
}

fn sweep(inner: &Inner, now: DateTime<Utc>) {
    let expired: Vec<String> = {
        let mut entries = lock(&inner.entries);
        let gone: Vec<String> = entries
            .iter()
            .filter(|(_, e)| e.expires_at <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for t in &gone {
            entries.remove(t);
        }
        gone
    };
    for token in expired {
        match remove_files(&inner.dir, &token) {
            Ok(()) => tracing::info!(token = %short_token(&token), "publish: expired file removed"),
            Err(e) => tracing::warn!(token = %short_token(&token), "publish: {e}"),
        }
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = inner.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(client = %peer, "publish: too many connections; one closed unanswered");
                    continue;
                };
                let inner2 = Arc::clone(&inner);
                inner.tracker.spawn(async move {
                    let _slot = slot;
                    serve_connection(stream, peer, inner2).await;
                });
            }
            // Transient (e.g. out of file descriptors): back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, inner: Arc<Inner>) {
    let _ = stream.set_nodelay(true);
    let svc = {
        let inner = Arc::clone(&inner);
        service_fn(move |req| {
            let inner = Arc::clone(&inner);
            async move { Ok::<_, Infallible>(respond(&inner, req, peer).await) }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    let deadline = tokio::time::sleep(CONNECTION_LIMIT);
    let mut deadline = std::pin::pin!(deadline);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = deadline.as_mut() => break,
            _ = inner.shutdown.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// `/<token>/<name>` (after the prefix, if the path has it) split in two, when both parts have
/// the shape of what is published; anything else is `None`.
fn match_path<'a>(prefix: &str, path: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = match path.strip_prefix(prefix) {
        Some(r) if !prefix.is_empty() && r.starts_with('/') => r,
        _ => path,
    };
    let (token, name) = rest.strip_prefix('/')?.split_once('/')?;
    (is_token(token) && is_name(name)).then_some((token, name))
}

/// The request path as it may be logged: the token cut to `short_token`, every other segment
/// of an unmatched path cut the same way (it may hold a token in another place), bounded length.
pub fn loggable_path(prefix: &str, path: &str, has_query: bool, matched: bool) -> String {
    let (shown_prefix, rest) = match path.strip_prefix(prefix) {
        Some(r) if !prefix.is_empty() && r.starts_with('/') => (prefix, r),
        _ => ("", path),
    };
    let segments: Vec<&str> = rest.strip_prefix('/').unwrap_or(rest).split('/').collect();
    let mut out = String::from(shown_prefix);
    for (i, seg) in segments.iter().enumerate() {
        if i == 8 {
            out.push_str("/…");
            break;
        }
        out.push('/');
        let is_file_name = matched && i == 1;
        if is_file_name || seg.chars().count() <= 4 {
            out.push_str(seg);
        } else {
            out.push_str(&short_token(seg));
        }
    }
    if has_query {
        out.push_str("?…");
    }
    out
}

async fn respond(inner: &Inner, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let has_query = req.uri().query().is_some();
    let found = if !(method == Method::GET || method == Method::HEAD) {
        Err(StatusCode::METHOD_NOT_ALLOWED)
    } else if has_query {
        Err(StatusCode::NOT_FOUND)
    } else {
        match live_file(inner, &path, Utc::now()) {
            Some(file) => open_file(&file).await.ok_or(StatusCode::NOT_FOUND),
            None => Err(StatusCode::NOT_FOUND),
        }
    };
    let (status, bytes) = match &found {
        Ok((_, len)) => (
            StatusCode::OK,
            if method == Method::HEAD { 0 } else { *len },
        ),
        Err(s) => (*s, 0),
    };
    tracing::info!(
        method = %method,
        path = %loggable_path(&inner.prefix, &path, has_query, found.is_ok()),
        client = %peer,
        bytes,
        status = status.as_u16(),
        "publish: fetch"
    );
    let mut response = Response::builder().status(status);
    match found {
        Ok((file, len)) => {
            response = response
                .header(header::CONTENT_TYPE, CONTENT_TYPE_XLS)
                .header(header::CONTENT_LENGTH, len)
                .header(header::CACHE_CONTROL, "no-store");
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from_stream(file_stream(file))
            };
            response.body(body)
        }
        Err(StatusCode::METHOD_NOT_ALLOWED) => response
            .header(header::ALLOW, "GET, HEAD")
            .body(Body::empty()),
        Err(_) => response.body(Body::empty()),
    }
    .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// The file a request path names, if it is published and not expired at `now` (whether or not
/// the sweep has run yet).
fn live_file(inner: &Inner, path: &str, now: DateTime<Utc>) -> Option<PathBuf> {
    let (token, name) = match_path(&inner.prefix, path)?;
    lock(&inner.entries)
        .get(token)
        .filter(|e| e.name == name && e.expires_at > now)
        .map(|_| inner.dir.join(token).join(name))
}

async fn open_file(path: &Path) -> Option<(tokio::fs::File, u64)> {
    let file = tokio::fs::File::open(path).await.ok()?;
    let len = file.metadata().await.ok()?.len();
    Some((file, len))
}

/// The file in 64 KiB chunks; a read error ends the body (the client sees a short response).
fn file_stream(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_hex() {
        let a = new_token();
        assert!(is_token(&a), "{a}");
        assert_ne!(a, new_token());
        assert!(!is_token("../x"));
        assert!(!is_token(&a.to_uppercase()));
    }

    #[test]
    fn names_are_plain_xls_file_names() {
        for ok in ["precos-1.xls", "a.xls", "run_12.part.xls"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".xls",
            "a.xlsx",
            "a.XLS",
            "../a.xls",
            "a/b.xls",
            "a%2fb.xls",
            ".a.xls",
            "pre ços.xls",
            "preços.xls",
        ] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_exact_shape_matches() {
        let t = "ab".repeat(TOKEN_BYTES);
        let p = format!("/{t}/a.xls");
        assert_eq!(match_path("", &p), Some((t.as_str(), "a.xls")));
        assert_eq!(
            match_path("/arquivos", &format!("/arquivos{p}")),
            Some((t.as_str(), "a.xls"))
        );
        assert_eq!(match_path("/arquivos", &p), Some((t.as_str(), "a.xls")));
        for bad in [
            "/".to_string(),
            format!("/{t}/"),
            format!("/{t}"),
            format!("//{t}/a.xls"),
            format!("/{t}//a.xls"),
            format!("/{t}/a.xls/"),
            format!("/{t}/x/a.xls"),
            format!("/{t}/%2e%2e%2fa.xls"),
            format!("/x/{t}/a.xls"),
        ] {
            assert_eq!(match_path("/arquivos", &bad), None, "{bad}");
        }
    }

    #[test]
    fn an_expired_file_is_refused_before_the_sweep_removes_it() {
        let now = Utc::now();
        let token = new_token();
        let inner = Inner {
            dir: PathBuf::from("/nonexistent"),
            public_base_url: "https://a.b/arquivos".into(),
            prefix: "/arquivos".into(),
            ttl: Duration::from_secs(60),
            local_addr: "127.0.0.1:1".parse().unwrap(),
            entries: Mutex::new(HashMap::from([(
                token.clone(),
                Entry {
                    name: "a.xls".into(),
                    size: 1,
                    expires_at: now + chrono::Duration::seconds(10),
                },
            )])),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        };
        let path = format!("/arquivos/{token}/a.xls");
        assert!(live_file(&inner, &path, now).is_some());
        assert!(live_file(&inner, &format!("/arquivos/{token}/b.xls"), now).is_none());
        let later = now + chrono::Duration::seconds(10);
        assert!(live_file(&inner, &path, later).is_none());
        assert_eq!(
            lock(&inner.entries).len(),
            1,
            "not swept yet, still refused"
        );
    }

    #[test]
    fn the_logged_path_never_holds_a_whole_token() {
        let t = new_token();
        let head = &t[..4];
        for (path, matched, want) in [
            (format!("/{t}/a.xls"), true, format!("/{head}…/a.xls")),
            (
                format!("/arquivos/{t}/a.xls"),
                true,
                format!("/arquivos/{head}…/a.xls"),
            ),
            (format!("/{t}/other.xls"), false, format!("/{head}…/othe…")),
            (format!("/x/{t}"), false, format!("/x/{head}…")),
            (format!("/a/{t}.xls"), false, format!("/a/{head}…")),
        ] {
            let got = loggable_path("/arquivos", &path, false, matched);
            assert_eq!(got, want);
            assert!(!got.contains(&t));
        }
        assert_eq!(loggable_path("", "/x", true, false), "/x?…");
        let long = "/a".repeat(100);
        assert!(loggable_path("", &long, false, false).len() < 40);
    }
}
