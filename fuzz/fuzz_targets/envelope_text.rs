//! `Envelope::decode_str` (and `decode_str_boxed`, the same reading) on any text, differential against `Envelope::decode` of the
//! parsed value: the same envelope or the same error, and never a panic.
#![no_main]

use crux_runtime::envelope::Envelope;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let by_text = Envelope::decode_str(text);
    assert_eq!(Envelope::decode_str_boxed(text).map(|b| *b), by_text, "boxed: {text}");
    match serde_json::from_str::<Value>(text) {
        Ok(value) => assert_eq!(by_text, Envelope::decode(&value), "{text}"),
        Err(_) => assert!(by_text.is_err(), "accepted invalid JSON: {text}"),
    }
});
