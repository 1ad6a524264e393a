//! HTTP plumbing: the accept loop, per-connection HTTP/1.1 serving (keep-alive, graceful
//! shutdown), request recording, injected latency, and dropping a connection without a response.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::{Body, Bytes};
use futures::StreamExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::RecordedRequest;
use super::routes::{self, Outcome, Req};
use super::store::{Shared, lock};

/// Larger bodies are read as empty (and then fail validation).
const MAX_BODY: usize = 32 * 1024 * 1024;

pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                tracker.spawn(serve_connection(
                    stream,
                    Arc::clone(&shared),
                    shutdown.clone(),
                ));
            }
            // Transient (e.g. out of file descriptors): back off instead of spinning.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// Serves one connection. A handler that wants the connection dropped cancels `drop_conn` and
/// never completes; dropping the connection future here then closes the socket with no bytes.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let drop_conn = CancellationToken::new();
    let svc = {
        let drop_conn = drop_conn.clone();
        service_fn(move |req| handle(Arc::clone(&shared), req, drop_conn.clone()))
    };
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = drop_conn.cancelled() => break,
            _ = shutdown.cancelled(), if !draining => {
                // Finish the in-flight request, then close; idle keep-alive connections close now.
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    drop_conn: CancellationToken,
) -> Result<Response<Body>, Infallible> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY)
        .await
        .unwrap_or_default();
    let req = Req {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        body,
        headers: parts.headers,
    };
    let seq = lock(&shared.log).push(RecordedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        status: 0,
        at,
        applied: false,
        headers: req
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    });
    let latency = lock(&shared.state).faults.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let handled = routes::process(&shared, &req);
    match handled.outcome {
        Outcome::Reply(reply) => {
            lock(&shared.log).finish(seq, reply.status, handled.applied);
            Ok(reply.into_response())
        }
        Outcome::Drop => {
            lock(&shared.log).finish(seq, 0, handled.applied);
            drop_conn.cancel();
            std::future::pending().await
        }
        Outcome::Endless(reply) => {
            lock(&shared.log).finish(seq, reply.status, handled.applied);
            let (parts, _) = reply.into_response().into_parts();
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let start = futures::stream::once(async { Ok(Bytes::from_static(b"{\"data\":[")) });
            let rest = futures::stream::repeat_with(move || Ok::<_, Infallible>(chunk.clone()));
            Ok(Response::from_parts(
                parts,
                Body::from_stream(start.chain(rest)),
            ))
        }
        Outcome::Stalled(reply) => {
            lock(&shared.log).finish(seq, reply.status, handled.applied);
            let (parts, body) = reply.into_response().into_parts();
            let full = axum::body::to_bytes(body, MAX_BODY)
                .await
                .unwrap_or_default();
            let half = full.slice(..full.len() / 2);
            let start = futures::stream::once(async move { Ok::<_, Infallible>(half) });
            let never = futures::stream::pending();
            let mut parts = parts;
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            Ok(Response::from_parts(
                parts,
                Body::from_stream(start.chain(never)),
            ))
        }
    }
}
