//! What the `overhead` and `span_threads` benches share, so that both measure the same
//! span loops into the same observer.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crux_runtime::observe::Observer;
use crux_runtime::sink::Memory;

/// Spans per iteration of the span benches: fastrace keeps at most 10 240 local spans
/// under one parent, so every bench opens its spans in batches under a fresh-enough parent
/// and reports the time of 100 spans (divide by 100 for one span).
pub const BATCH: usize = 100;

/// fastrace's reporter for the benches: drops what its collector hands over.
pub struct DropReporter;
impl fastrace::collector::Reporter for DropReporter {
    fn report(&mut self, spans: Vec<fastrace::prelude::SpanRecord>) {
        black_box(spans);
    }
}

/// The function fastrace's span loops call: one `#[trace]` span each.
#[fastrace::trace]
#[inline(never)]
pub fn fast() {
    black_box(());
}

/// The crux span benches' observer: a bounded Memory sink (so tens of millions of
/// iterations stay in memory) and a queue large enough for a tight loop's backlog.
pub fn span_observer() -> Observer {
    Observer::builder()
        .sink(Memory::bounded(10_000))
        .capacity(1 << 20)
        .build()
}

/// Waits (at most 5 s) until `observer` has nothing queued: the records a loop left behind
/// are delivered before whatever runs next is measured.
pub fn wait_until_delivered(observer: &Observer) {
    let by = Instant::now() + Duration::from_secs(5);
    while observer.stats().queued > 0 && Instant::now() < by {
        std::thread::sleep(Duration::from_millis(1));
    }
}
