//! A client that opens a connection and trickles its headers forever is cut off after
//! `Limits::header_read_timeout`, while the server keeps serving everyone else.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

/// Sends a header line every 100 ms until the server closes the connection; returns how
/// long the connection lived, or `None` if it still lived after `give_up`.
fn trickle(addr: std::net::SocketAddr, give_up: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let _ = stream.write_all(b"POST /api/query HTTP/1.1\r\nHost: slow\r\n");
    let mut n = 0u64;
    while started.elapsed() < give_up {
        n += 1;
        if stream
            .write_all(format!("X-Slow-{n}: still coming\r\n").as_bytes())
            .is_err()
        {
            return Some(started.elapsed());
        }
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            // Closed (possibly after a short error reply): cut off.
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_cut_off_and_others_are_served() {
    let server = common::start(|d| d, |s| s.header_read_timeout(Duration::from_secs(1))).await;
    let addr = server.addr;
    let slow = tokio::task::spawn_blocking(move || trickle(addr, Duration::from_secs(60)));
    // While the slow client trickles, others are served.
    for _ in 0..3 {
        let reply = server
            .post(
                "/api/mutation",
                json!({"path": "notes:add", "args": {"text": "hi"}, "format": "json"}),
            )
            .await;
        assert_eq!(reply.status, 200);
    }
    let lived = slow
        .await
        .unwrap()
        .expect("the trickling client is cut off");
    // It is cut off after about the header timeout (1 s), long before it would give up;
    // the bound is generous for a loaded machine.
    assert!(
        lived >= Duration::from_millis(900),
        "cut off too early: {lived:?}"
    );
    assert!(lived < Duration::from_secs(30), "cut off late: {lived:?}");
    let reply = server
        .post(
            "/api/query",
            json!({"path": "auth:whoami", "args": {}, "format": "json"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

/// An idle kept-alive connection counts as one waiting for headers: it is closed after
/// the header read timeout too, so idle connections cannot pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let server = common::start(|d| d, |s| s.header_read_timeout(Duration::from_secs(1))).await;
    let addr = server.addr;
    let lived = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let body = r#"{"path":"auth:whoami","args":{},"format":"json"}"#;
        write!(
            stream,
            "POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // The reply, then silence until the server closes the connection.
        let started = Instant::now();
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        let reply = String::from_utf8_lossy(&all).into_owned();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(
        lived < Duration::from_secs(25),
        "still open after {lived:?}"
    );
    server.stop().await;
}
