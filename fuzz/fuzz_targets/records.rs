//! Store lines as the `crux` viewer reads them: its record decoder (`decode_line`) on
//! every line of any text, never a panic.
//!
//! The viewer is a binary, so its decoder is compiled in here from its source files
//! (`src/bin/crux/{record,time}.rs`) rather than moved into a library.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/bin/crux/time.rs"]
mod time;

#[path = "../../src/bin/crux/record.rs"]
mod record;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (i, line) in lines.iter().enumerate() {
        let _ = record::decode_line(i + 1, line);
    }
});
