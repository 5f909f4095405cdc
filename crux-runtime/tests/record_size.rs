//! The sizes of the record types: every record is moved on the caller (into the queue)
//! and on the delivery worker, so each byte is copied per record; a record that grows
//! past this bound costs every span (see BENCHMARKS.md, "Issue 15, sixth round").

use crux_runtime::record::{Base, Body, Record};

#[test]
fn records_stay_within_their_size() {
    let (record, body, base) = (size_of::<Record>(), size_of::<Body>(), size_of::<Base>());
    eprintln!("Record {record} Body {body} Base {base}");
    assert!(
        record <= 320,
        "Record grew to {record} bytes (Body {body}, Base {base})"
    );
}
