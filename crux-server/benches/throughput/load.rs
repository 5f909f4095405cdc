//! The load generator, run as a child process: `N` keep-alive HTTP/1.1 connections on one
//! thread, each sending the next request as soon as the previous reply is read (closed
//! loop). After a warm-up it counts replies and their latencies for a fixed time, then
//! prints one line of JSON: `{"requests", "errors", "seconds", "p50_us", "p99_us"}`.
//!
//! A hand-written client (write the request bytes, read the head, then `Content-Length`
//! bytes) keeps the generator's own cost small and adds no HTTP client crate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one connection saw while measuring.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// The request bytes for `body`.
fn request_bytes(addr: SocketAddr, body: &str) -> Vec<u8> {
    format!(
        "POST /api/action HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Sends exactly `total` requests over `connections` connections and exits; panics on a
/// failed one. For instruction counts, where the number of requests must be known.
pub fn count(addr: SocketAddr, connections: usize, total: usize, body: &str) {
    let request = request_bytes(addr, body);
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for c in 0..connections {
            let n = total / connections + usize::from(c < total % connections);
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connects");
                let _ = stream.set_nodelay(true);
                let mut buf = Vec::new();
                for _ in 0..n {
                    let ok = exchange(&mut stream, &request, &mut buf).await;
                    assert!(matches!(ok, Ok(true)), "a failed request: {ok:?}");
                }
            }));
        }
        for task in tasks {
            task.await.expect("a connection task does not panic");
        }
    });
}

/// Runs the generator: `addr`, connections, warm-up and measured milliseconds, the body.
pub fn main(addr: SocketAddr, connections: usize, warmup: Duration, measure: Duration, body: &str) {
    let runtime = runtime();
    let request = request_bytes(addr, body);
    let (requests, errors, seconds, mut all) = runtime.block_on(async {
        let start = Instant::now() + warmup;
        let stop = start + measure;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let request = request.clone();
            tasks.push(tokio::spawn(connection(addr, request, start, stop)));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let tally = task.await.expect("a connection task does not panic");
            all.extend(tally.latencies_us);
            errors += tally.errors;
        }
        (all.len() as u64, errors, measure.as_secs_f64(), all)
    });
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"requests\":{requests},\"errors\":{errors},\"seconds\":{seconds},\"p50_us\":{},\"p99_us\":{}}}",
        pick(0.50),
        pick(0.99)
    );
}

/// One keep-alive connection until `stop`; replies that finish in `[start, stop)` count.
async fn connection(addr: SocketAddr, request: Vec<u8>, start: Instant, stop: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut stream = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let sent = Instant::now();
        if sent >= stop {
            return tally;
        }
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected above");
        let ok = exchange(s, &request, &mut buf).await;
        let done = Instant::now();
        if done >= start && done < stop {
            match ok {
                Ok(true) => tally
                    .latencies_us
                    .push(done.duration_since(sent).as_micros().min(u32::MAX as u128) as u32),
                _ => tally.errors += 1,
            }
        }
        if ok.is_err() {
            stream = None;
        }
    }
}

/// Sends one request and reads its reply; `Ok(true)` for a 200 with `"status":"success"`.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    stream.write_all(request).await?;
    buf.clear();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(std::io::Error::other)?;
    let ok_status = head.starts_with("HTTP/1.1 200");
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .ok_or_else(|| std::io::Error::other("a reply without Content-Length"))?;
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    let body = &buf[head_end..head_end + length];
    const SUCCESS: &[u8] = b"\"status\":\"success\"";
    let success = body.windows(SUCCESS.len()).any(|w| w == SUCCESS);
    Ok(ok_status && success)
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}
