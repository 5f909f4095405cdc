//! `Carrier::decode` of any JSON value against `Carrier::extract` of the headers that
//! value spells (the `crux` header compact and pretty): the same carrier or the same
//! error. An accepted carrier survives `to_value` and `inject`/`extract`.
#![no_main]

use std::collections::BTreeMap;

use crux_runtime::carrier::Carrier;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let by_value = Carrier::decode(&value);
    if let Ok(carrier) = &by_value {
        assert_eq!(Carrier::decode(&carrier.to_value()).as_ref(), Ok(carrier));
        let mut headers = BTreeMap::new();
        carrier.inject(&mut headers);
        assert_eq!(Carrier::extract(&headers).as_ref(), Ok(carrier));
    }
    // The headers of a value whose fields are all headers: strings, and the `crux` object.
    let Some(object) = value.as_object() else {
        return;
    };
    let mut compact = BTreeMap::new();
    let mut pretty = BTreeMap::new();
    for (key, field) in object {
        match (key.as_str(), field) {
            ("traceparent" | "tracestate" | "baggage", Value::String(s)) => {
                compact.insert(key.clone(), s.clone());
                pretty.insert(key.clone(), s.clone());
            }
            ("crux", crux) if !crux.is_null() => {
                compact.insert(key.clone(), serde_json::to_string(crux).unwrap());
                pretty.insert(key.clone(), serde_json::to_string_pretty(crux).unwrap());
            }
            _ => return,
        }
    }
    if !compact.contains_key("traceparent") || !compact.contains_key("crux") {
        return;
    }
    assert_eq!(Carrier::extract(&compact), by_value, "{compact:?}");
    assert_eq!(Carrier::extract(&pretty), by_value, "{pretty:?}");
});
