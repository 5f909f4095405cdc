//! The sizes of the record types: every record is moved on the caller (into the queue)
//! and on the delivery worker, so each byte is copied per record; a record that grows
//! past this bound costs every span (see BENCHMARKS.md, "Issue 15, sixth round"). The
//! largest variant sets the size of every record: `Body::Span`'s fields are boxed
//! (`FinishedSpan`), which took records from 320 to 240 bytes. Under a tight loop of spans
//! the worker's batches are tens of thousands of records, past the caches, so both threads
//! pay per byte (`benches/span_threads.rs`; the figures are in BENCHMARKS.md, "Session 10").

use crux_runtime::record::{Base, Body, Record};

#[test]
fn records_stay_within_their_size() {
    let (record, body, base) = (size_of::<Record>(), size_of::<Body>(), size_of::<Base>());
    eprintln!("Record {record} Body {body} Base {base}");
    assert!(
        record <= 240,
        "Record grew to {record} bytes (Body {body}, Base {base})"
    );
}
