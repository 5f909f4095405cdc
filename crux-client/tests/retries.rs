//! Only queries are retried: a mutation or an action may have run, so the client never
//! sends it twice. Against a server that answers every request 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crux::ErrorKind;
use crux_client::{Client, ClientError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server answering each request `503 {"code":"Overloaded"}`; counts the requests.
async fn overloaded() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the body its content-length announces.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"code":"Overloaded","message":"try later"}"#;
                let reply = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_is_retried_and_a_mutation_or_action_never() {
    let (url, count) = overloaded().await;
    let client = Client::builder(&url).query_retries(2).build().unwrap();

    let err = client
        .mutation::<_, Value>("notes:add", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!("{url} answered HTTP 503 to 'notes:add': Overloaded: try later")
    );
    assert_eq!(
        count.swap(0, Ordering::SeqCst),
        1,
        "a mutation is sent once"
    );

    client
        .action::<_, Value>("work:go", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(count.swap(0, Ordering::SeqCst), 1, "an action is sent once");

    let err = client
        .query::<_, Value>("notes:list", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(
        count.swap(0, Ordering::SeqCst),
        3,
        "a query: once plus two retries"
    );
}

#[test]
fn bad_configuration_is_a_typed_error_naming_what_is_wrong() {
    let err = Client::new("ftp://example.com").unwrap_err();
    assert!(
        matches!(&err, ClientError::InvalidUrl { reason, .. } if reason.contains("http or https")),
        "{err}"
    );
    assert_eq!(
        Client::new("example.com:3210").unwrap_err().to_string(),
        "invalid deployment URL `example.com:3210`: it needs a scheme, like https://"
    );
    let err = Client::builder("https://a.convex.cloud")
        .admin_key("key\nwith newline")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ClientError::InvalidCredential { what: "admin key" }),
        "{err}"
    );
    let err = Client::builder("https://a.convex.cloud")
        .add_root_certificate(b"not a certificate".to_vec())
        .build()
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidCertificate(_)), "{err}");
    assert_eq!(
        Client::new("https://a.convex.cloud/").unwrap().url(),
        "https://a.convex.cloud"
    );
}
