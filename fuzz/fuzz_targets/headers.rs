//! `Carrier::extract` and `TraceParent::extract` on arbitrary header texts (the input's
//! lines: `traceparent`, `crux`, `tracestate`, `baggage`): never a panic, and `extract`
//! agrees with `decode` of the value the headers spell.
#![no_main]

use std::collections::BTreeMap;

use crux_runtime::carrier::{Carrier, CarrierError, TraceParent};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut headers = BTreeMap::new();
    for (key, line) in ["traceparent", "crux", "tracestate", "baggage"]
        .into_iter()
        .zip(text.split('\n'))
    {
        headers.insert(key.to_owned(), line.to_owned());
    }
    let _ = TraceParent::extract(&headers);
    let by_headers = Carrier::extract(&headers);
    let (Some(traceparent), Some(crux)) = (headers.get("traceparent"), headers.get("crux")) else {
        return;
    };
    let Ok(crux) = serde_json::from_str::<Value>(crux) else {
        assert_eq!(by_headers, Err(CarrierError::HeaderNotJson));
        return;
    };
    let mut value = Map::new();
    value.insert("traceparent".into(), Value::String(traceparent.clone()));
    for key in ["tracestate", "baggage"] {
        if let Some(v) = headers.get(key) {
            value.insert(key.into(), Value::String(v.clone()));
        }
    }
    value.insert("crux".into(), crux);
    assert_eq!(by_headers, Carrier::decode(&Value::Object(value)));
});
