//! OTLP over HTTPS with headers: a collector with a self-signed certificate the test
//! trusts receives the spans and the `Authorization` header (what Langfuse's OTLP endpoint
//! needs); without trusting it, the export fails and is counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crux_otel::OtlpSink;
use crux_runtime::delivery::FlushOptions;
use crux_runtime::observe::{Observer, RunOptions, RunStatus};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

struct Received {
    authorization: String,
    body: Vec<u8>,
}

/// An HTTPS collector on a free loopback port (certificate for `localhost`); answers 200.
fn https_collector() -> (String, Vec<u8>, mpsc::Receiver<Received>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = generated.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone().into()], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}/v1/traces",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, stream);
            let mut reader = BufReader::new(&mut tls);
            let mut line = String::new();
            // A client that refuses the certificate ends the handshake here.
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let (mut len, mut authorization) = (0usize, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "authorization" => authorization = v.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            tls.conn.send_close_notify();
            let _ = tls.flush();
            let _ = tx.send(Received {
                authorization,
                body,
            });
        }
    });
    (url, cert, rx)
}

fn export_one_run(sink: &OtlpSink) {
    let observer = Observer::builder().sink(sink.clone()).build();
    let run = observer.open_run(RunOptions::new("nightly digest", "agent.run"));
    run.end(RunStatus::Ok);
    observer.flush_blocking(FlushOptions::FINAL);
}

#[test]
fn spans_reach_an_https_collector_with_the_authorization_header() {
    let (url, cert, received) = https_collector();
    let sink = OtlpSink::builder()
        .only_root_certificate(cert)
        .header("Authorization", "Basic cGstbGYtMTpzay1sZi0x")
        .build_otlp(&url)
        .unwrap();
    export_one_run(&sink);
    let got = received
        .recv_timeout(Duration::from_secs(30))
        .expect("the collector received an export");
    assert_eq!(got.authorization, "Basic cGstbGYtMTpzay1sZi0x");
    let request = ExportTraceServiceRequest::decode(&got.body[..]).unwrap();
    let names: Vec<&str> = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["nightly digest"]);
}

#[test]
fn an_untrusted_certificate_fails_the_export_and_it_is_counted() {
    let (url, _cert, received) = https_collector();
    let sink = OtlpSink::builder().build_otlp(&url).unwrap();
    export_one_run(&sink);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.stats().failed < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = sink.stats();
    assert_eq!((stats.exported, stats.failed), (0, 1));
    assert!(received.try_recv().is_err(), "nothing was delivered");
}
