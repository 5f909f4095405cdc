//! `OtlpSink::from_env`: the OpenTelemetry environment variables. One test, because it
//! changes the process environment.

use crux_otel::OtlpSink;

#[test]
fn from_env_exports_only_when_an_endpoint_is_set() {
    // SAFETY: the only test in this binary; no other thread reads the environment.
    unsafe {
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
        std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    }
    assert!(OtlpSink::from_env().is_none());
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "  ") };
    assert!(
        OtlpSink::from_env().is_none(),
        "a blank endpoint is no endpoint"
    );
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318") };
    assert!(OtlpSink::from_env().is_some());
    unsafe {
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces",
        );
    }
    assert!(OtlpSink::from_env().is_some());
    unsafe {
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://collector.example/v1/traces",
        );
    }
    assert!(
        OtlpSink::from_env().is_some(),
        "HTTPS endpoints are exported to"
    );
    unsafe {
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "grpc://collector.example:4317",
        );
    }
    assert!(
        OtlpSink::from_env().is_none(),
        "not HTTP: refused with a note, not a silent failure"
    );
}
