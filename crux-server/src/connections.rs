//! Accepting and serving HTTP/1.1 connections: hyper with a timer, so a client that opens a
//! connection and trickles its headers is cut off after [`Limits::header_read_timeout`]
//! (`axum::serve` sets no timer, so hyper's header timeout never fires there), and a
//! graceful shutdown: stop accepting, ask every connection to finish its request in
//! flight, wait for them.
//!
//! [`Limits::header_read_timeout`]: crate::Limits::header_read_timeout

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

/// How long accepting pauses after an error (out of file descriptors, say) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// returns once every connection has finished (the caller bounds that wait).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    // Dropping `stop` tells connections to shut down gracefully; each holds a `done`
    // receiver, so `finished.closed()` resolves when the last one ends.
    let (stop, stopping) = watch::channel(());
    let (finished, done) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stopping = stopping.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    // What `into_make_service_with_connect_info` would insert: the context
                    // policy reads the peer address.
                    request.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().call(request.map(Body::new))
                });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop);
    drop(done);
    finished.closed().await;
}
