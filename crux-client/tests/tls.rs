//! HTTPS: the client speaks TLS (rustls) to a server whose self-signed certificate the test
//! trusts, refuses one it does not trust, and a run continues across the TLS hop when the
//! call is made outside any function.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crux::local::Deployment;
use crux::observe::{Observer, RunOptions};
use crux::prelude::*;
use crux::sink::Memory;
use crux_client::{Client, RemoteAction};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

#[derive(Debug, Serialize, Deserialize)]
pub struct Topic {
    pub topic: String,
}

#[crux::action(path = "research:plan")]
pub async fn plan(_ctx: &ActionCtx, args: Topic) -> crux::Result<String> {
    Ok(format!("read about {}", args.topic))
}

const PLAN: RemoteAction<Topic, String> = RemoteAction::new("research:plan");

/// A crux service behind an HTTPS front with a fresh self-signed certificate for
/// `localhost`; returns the front's address, the certificate (DER) and B's records.
async fn https_service() -> (SocketAddr, Vec<u8>, Memory) {
    let sink = Memory::new();
    let deployment = Deployment::builder()
        .sink(sink.clone())
        .function(plan)
        .build();
    let server = crux_server::Server::builder(deployment).build();
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = plain.local_addr().unwrap();
    tokio::spawn(async move { server.serve(plain, std::future::pending()).await });

    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = generated.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone().into()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = front.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake (the untrusting client) just ends the connection.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut upstream = TcpStream::connect(backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (addr, cert, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_trusted_self_signed_certificate_continues_the_run() {
    let (addr, cert, b_sink) = https_service().await;
    let client = Client::builder(format!("https://localhost:{}", addr.port()))
        .add_root_certificate(cert)
        .build()
        .unwrap();

    // Outside any function: a run opened by hand, the hop recorded on its observer.
    let a_sink = Memory::new();
    let observer = Observer::builder().sink(a_sink.clone()).build();
    let run = observer.open_run(RunOptions::new("nightly digest", "agent.run"));
    let reply = run
        .scope()
        .in_scope(client.run_action(
            "plan research",
            PLAN,
            Topic {
                topic: "tides".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(reply, "read about tides");
    let run_id = run.run_id().to_string();
    run.end(crux::observe::RunStatus::Ok);
    observer.flush(crux::observe::FlushOptions::FINAL).await;

    let a = a_sink.records();
    let boundary = a
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == "plan research")
        .expect("the hop's boundary span");
    // B's side continued A's run over TLS and acknowledged on A's span.
    let mut b = Vec::new();
    for _ in 0..100 {
        b = b_sink.records();
        if b.iter()
            .any(|r| r["name"] == "runtime.convex.boundary.completed")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acks: Vec<&serde_json::Value> = b
        .iter()
        .filter(|r| r["type"] == "span:event" && r["spanId"] == boundary["spanId"])
        .collect();
    assert_eq!(acks.len(), 2, "received + completed on A's span: {b:#?}");
    assert!(b.iter().all(|r| r["runId"] == run_id.as_str()), "{b:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_with_a_clear_error() {
    let (addr, _cert, b_sink) = https_service().await;
    let url = format!("https://localhost:{}", addr.port());
    let client = Client::builder(&url).query_retries(0).build().unwrap();
    let err = client
        .action::<_, String>(
            "research:plan",
            &Topic {
                topic: "tides".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.message()
            .starts_with(&format!("could not reach {url} for 'research:plan': ")),
        "{err:?}"
    );
    assert!(
        err.message().contains("certificate"),
        "names the certificate: {err:?}"
    );
    assert!(b_sink.records().is_empty(), "nothing reached the function");
}
