//! Hostile HTTP: truncated and slow bodies, oversized heads, and 10 000 random bodies and
//! headers. Each gets a clear 4xx (or a function's `status: "error"`), nothing panics, the
//! server still answers afterwards, and no forged envelope gets a record into the run it
//! names. Loopback only; every loop is bounded in count, every read in time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{of_run, start, ts_envelope};
use crux_server::ContextPolicy;
use serde_json::{Value, json};

const FORGED_RUN: &str = "run_f0f0f0f0f0f0f0f0f0f0f0f0";
const FORGED_TRACE: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_body_is_answered_408() {
    let server = start(|d| d, |s| s.body_timeout(Duration::from_millis(300))).await;
    let addr = server.addr;
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(
                b"POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 100\r\n\r\n{\"path\":",
            )
            .unwrap();
        // ...and nothing more: the connection stays open, the body never completes.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
        common::parse_reply(&out).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(reply.status, 408);
    assert_eq!(reply.json()["code"], "BodyTimeout");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_past_the_limit_and_oversized_heads_are_refused() {
    let server = start(|d| d, |s| s.max_body_bytes(256).max_header_bytes(1024)).await;
    let addr = server.addr;
    let chunk = "x".repeat(200);
    let raw = format!(
        "POST /api/query HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\nc8\r\n{chunk}\r\nc8\r\n{chunk}\r\n0\r\n\r\n"
    );
    let reply = tokio::task::spawn_blocking(move || common::send_raw(addr, raw.as_bytes()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 413);
    let big = "y".repeat(2048);
    let reply = server
        .post_with(
            "/api/query",
            &[("X-Padding", &big)],
            json!({"path": "values:echo", "args": {}}),
        )
        .await;
    assert_eq!(reply.status, 431);
    assert_eq!(reply.json()["code"], "HeadersTooLarge");
    server.stop().await;
}

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| char::from(b' ' + self.below(95) as u8))
            .collect()
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.next() as i64),
            2 => json!(self.text(12)),
            3 => json!(self.below(2) == 0),
            4 => json!(f64::from(self.below(1000) as u32) / 7.0),
            5 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            6 => {
                let tag = self.pick(&["$integer", "$float", "$bytes", "n", "b", "f", "__crux"]);
                json!({ tag: self.value(depth - 1) })
            }
            _ => {
                let mut map = serde_json::Map::new();
                for _ in 0..self.below(4) {
                    let key = self.pick(&["n", "b", "f", "text", "sleep_ms", "$bytes", "x"]);
                    map.insert(key.into(), self.value(depth - 1));
                }
                Value::Object(map)
            }
        }
    }
}

fn random_request(rng: &mut Rng) -> Vec<u8> {
    let route = rng.pick(&[
        "/api/query",
        "/api/mutation",
        "/api/action",
        "/api/function",
        "/api/run/values/echo",
        "/api/run/work/where",
        "/api/query?path=values%3Aecho&args=%7B",
        "/api/nothing",
    ]);
    let method = rng.pick(&["POST", "POST", "POST", "GET", "PUT"]);
    let body: Vec<u8> = match rng.below(4) {
        0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        1 => rng.text(100).into_bytes(),
        _ => {
            let mut request = serde_json::Map::new();
            if rng.below(8) != 0 {
                let path = rng.pick(&[
                    "values:echo",
                    "notes:add",
                    "work:where",
                    "work:fail",
                    "secret:get",
                    "nope:nope",
                    "",
                    ":",
                ]);
                request.insert("path".into(), json!(path));
            }
            if rng.below(6) != 0 {
                let format = rng.pick(&["json", "convex_encoded_json", "convex_json", "xml"]);
                request.insert("format".into(), json!(format));
            }
            let mut args = rng.value(3);
            if rng.below(4) == 0 {
                let forged = ts_envelope(FORGED_RUN, FORGED_TRACE, "00f067aa0ba902b7");
                match &mut args {
                    Value::Object(map) => {
                        map.insert("__crux".into(), forged);
                    }
                    _ => args = json!({"__crux": forged}),
                }
            }
            if rng.below(3) == 0 {
                args = json!([args]);
            }
            request.insert("args".into(), args);
            let mut text = Value::Object(request).to_string().into_bytes();
            if rng.below(6) == 0 && !text.is_empty() {
                let cut = rng.below(text.len());
                text.truncate(cut);
            }
            text
        }
    };
    let mut head = format!("{method} {route} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if rng.below(6) != 0 {
        let ct = rng.pick(&[
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        ]);
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if rng.below(3) == 0 {
        let client = match rng.below(3) {
            0 => "npm-1.49.0".to_owned(),
            1 => rng.text(20),
            _ => format!("{}-1.0.0", rng.text(8).replace(' ', "x")),
        };
        head.push_str(&format!("Convex-Client: {}\r\n", client.trim()));
    }
    if rng.below(4) == 0 {
        let auth = match rng.below(3) {
            0 => format!("Convex {}", rng.text(20).trim()),
            1 => format!("Bearer {}", rng.text(40).trim()),
            _ => rng.text(30).trim().to_owned(),
        };
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    if rng.below(3) == 0 {
        let tp = match rng.below(2) {
            0 => format!("00-{FORGED_TRACE}-00f067aa0ba902b7-01"),
            _ => rng.text(60).trim().to_owned(),
        };
        head.push_str(&format!("traceparent: {tp}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&body);
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_requests_get_clear_answers_and_forge_nothing() {
    // A random `sleep_ms` may be huge: the action limit bounds it.
    let server = start(
        |d| d.action_timeout(Duration::from_secs(2)),
        |s| {
            s.context_policy(ContextPolicy::AdminOnly)
                .admin_key("not-guessable-admin-key")
                .max_body_bytes(64 << 10)
        },
    )
    .await;
    let addr = server.addr;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            tokio::task::spawn_blocking(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                let mut seen = [0usize; 6];
                for i in 0..2500 {
                    let raw = random_request(&mut rng);
                    let reply = common::send_raw(addr, &raw).unwrap_or_else(|err| {
                        panic!(
                            "thread {t} request {i}: no reply ({err}) to {}",
                            String::from_utf8_lossy(&raw)
                        )
                    });
                    let status = reply.status;
                    assert!(
                        status == 200 || (400..500).contains(&status),
                        "thread {t} request {i}: {status} for {}",
                        String::from_utf8_lossy(&raw)
                    );
                    if status == 200 {
                        let body = reply.json();
                        assert!(
                            body["status"] == "success" || body["status"] == "error",
                            "{body}"
                        );
                    } else if !reply.body.is_empty() {
                        let body = reply.json();
                        assert!(body["code"].is_string() && body["message"].is_string());
                    }
                    seen[(status / 100) as usize] += 1;
                }
                seen
            })
        })
        .collect();
    let mut seen = [0usize; 6];
    for thread in threads {
        let counts = thread.await.unwrap();
        for (total, n) in seen.iter_mut().zip(counts) {
            *total += n;
        }
    }
    eprintln!("replies by status class (index = first digit): {seen:?}");
    assert_eq!(seen[2] + seen[4], 10_000, "{seen:?}");
    assert!(
        seen[2] > 100 && seen[4] > 100,
        "both kinds exercised: {seen:?}"
    );
    // Still serving.
    let ok = server
        .post("/api/action", json!({"path": "work:where", "args": {}}))
        .await
        .json();
    assert_eq!(ok["status"], "success");
    let sink = server.sink.clone();
    server.stop().await;
    let records = sink.records();
    assert!(
        of_run(&records, FORGED_RUN).is_empty(),
        "a forged envelope got records into the run it names"
    );
    assert!(
        !records.iter().any(|r| r["traceId"] == FORGED_TRACE),
        "a forged traceparent put a run in its trace"
    );
}
