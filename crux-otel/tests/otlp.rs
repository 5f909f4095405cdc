//! The OTLP HTTP/protobuf exporter against a real socket: a minimal collector that
//! decodes what it receives, and a collector that is not there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crux_otel::{OtlpError, OtlpSink};
use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::observe::{Observer, RunOptions, RunStatus, SpanStatus};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

struct Received {
    request_line: String,
    content_type: String,
    body: Vec<u8>,
}

/// Accepts OTLP posts on a free loopback port, answering 200 to each.
fn collector() -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut len, mut content_type) = (0usize, String::new());
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
                    "content-type" => content_type = v.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            let _ = tx.send(Received {
                request_line: request_line.trim_end().to_owned(),
                content_type,
                body,
            });
        }
    });
    (url, rx)
}

fn str_attr(
    attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value.as_ref()?.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

#[test]
fn runs_reach_an_otlp_collector_as_protobuf_with_crux_ids_and_the_resource() {
    let (url, received) = collector();
    let sink = OtlpSink::builder()
        .service_name("crux-otlp-test")
        .resource_attribute("openinference.project.name", "crux-tests")
        .build_otlp(&url)
        .unwrap();
    let observer = Observer::builder().sink(sink.clone()).build();
    let run = observer.open_run(RunOptions::new("support chat", "agent.run"));
    let span = run
        .scope()
        .span("answer", "generation.call")
        .attr("model", "m1")
        .start();
    let span_id = span.id().unwrap();
    span.end(SpanStatus::Ok);
    let (trace, root) = (run.trace_id(), run.run_id().root_span_id());
    run.end(RunStatus::Ok);
    assert_eq!(
        observer.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );

    let got = received
        .recv_timeout(Duration::from_secs(5))
        .expect("an OTLP post");
    assert!(
        got.request_line.starts_with("POST /v1/traces "),
        "{}",
        got.request_line
    );
    assert_eq!(got.content_type, "application/x-protobuf");
    let req = ExportTraceServiceRequest::decode(&got.body[..]).unwrap();
    let rs = &req.resource_spans[0];
    let resource = &rs.resource.as_ref().unwrap().attributes;
    assert_eq!(
        str_attr(resource, "openinference.project.name").as_deref(),
        Some("crux-tests")
    );
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        assert_eq!(
            str_attr(resource, "service.name").as_deref(),
            Some("crux-otlp-test")
        );
    }
    let spans: Vec<_> = rs.scope_spans.iter().flat_map(|s| &s.spans).collect();
    assert_eq!(spans.len(), 2);
    let by_name = |n: &str| *spans.iter().find(|s| s.name == n).unwrap();
    let root_span = by_name("support chat");
    assert_eq!(root_span.trace_id, trace.0.to_be_bytes());
    assert_eq!(root_span.span_id, root.0.to_be_bytes());
    assert!(root_span.parent_span_id.is_empty());
    let answer = by_name("answer");
    assert_eq!(answer.span_id, span_id.0.to_be_bytes());
    assert_eq!(answer.parent_span_id, root.0.to_be_bytes());
    assert_eq!(
        str_attr(&answer.attributes, "gen_ai.request.model").as_deref(),
        Some("m1")
    );
    assert_eq!(sink.stats().exported, 2);
}

#[test]
fn an_unreachable_collector_costs_a_bounded_flush_and_the_spans_are_counted() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sink = OtlpSink::new(&format!("http://127.0.0.1:{port}/v1/traces")).unwrap();
    let observer = Observer::builder().sink(sink.clone()).build();
    let run = observer.open_run(RunOptions::new("support chat", "agent.run"));
    run.scope()
        .span("step", "plan.operation")
        .start()
        .end(SpanStatus::Ok);
    run.end(RunStatus::Ok);
    let t = Instant::now();
    let r = observer.flush_blocking(FlushOptions::BOUNDARY);
    assert!(
        t.elapsed() <= Duration::from_millis(1200),
        "{:?}",
        t.elapsed()
    );
    assert_ne!(r.status, FlushStatus::Drained);
    // The export failed fast (connection refused) or is still failing: either way the
    // spans end up counted, never exported.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.stats().failed < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = sink.stats();
    assert_eq!(
        (stats.exported, stats.failed, stats.not_exported()),
        (0, 2, 2)
    );
}

#[test]
fn a_malformed_endpoint_is_a_typed_error_naming_it() {
    let err = OtlpSink::new("localhost:4318").unwrap_err();
    assert!(matches!(err, OtlpError::InvalidEndpoint { .. }));
    assert!(err.to_string().contains("localhost:4318"), "{err}");
    assert!(
        OtlpSink::new("https://collector.example/v1/traces").is_ok(),
        "HTTPS endpoints are exported to"
    );
    let err = OtlpSink::new("ftp://collector.example/v1/traces").unwrap_err();
    assert!(err.to_string().contains("http:// or https://"), "{err}");
    let err = OtlpSink::builder()
        .header("Authorization", "Basic a\nb")
        .build_otlp("https://collector.example/v1/traces")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid OTLP header `Authorization`: its value has characters HTTP does not allow \
         (control characters, newlines)"
    );
    let err = OtlpSink::builder()
        .header("bad header", "x")
        .build_otlp("https://collector.example/v1/traces")
        .unwrap_err();
    assert!(
        matches!(err, OtlpError::InvalidHeader { ref name, .. } if name == "bad header"),
        "{err}"
    );
    let err = OtlpSink::new("http://exa mple/v1/traces").unwrap_err();
    assert!(err.to_string().contains("exa mple"), "{err}");
}
