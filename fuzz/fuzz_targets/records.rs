//! Store lines as the `crux` viewer reads them: `crux-view`'s record decoder
//! (`decode_line`) on every line of any text, never a panic; then the runs and trees the
//! viewer builds from whatever decoded, also never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for (i, line) in text.lines().enumerate() {
        let _ = crux_view::record::decode_line(i + 1, line);
    }
    if let Ok(values) = text
        .lines()
        .map(serde_json::from_str::<serde_json::Value>)
        .collect::<Result<Vec<_>, _>>()
    {
        let _ = crux_view::Trees::from_values(&values).to_string();
    }
});
