//! `Envelope::decode` on any JSON value: never a panic, and an accepted envelope encodes
//! (both encoders) to what decodes back to itself.
#![no_main]

use crux_runtime::envelope::Envelope;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(envelope) = Envelope::decode(&value) else {
        return;
    };
    let encoded = envelope.to_value();
    assert_eq!(encoded, serde_json::to_value(&envelope).unwrap());
    assert_eq!(Envelope::decode(&encoded).as_ref(), Ok(&envelope));
    let text = envelope.to_json_string();
    assert_eq!(text, serde_json::to_string(&envelope).unwrap());
    assert_eq!(Envelope::decode_str(&text), Ok(envelope));
});
