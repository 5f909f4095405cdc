//! Delivery and bounded flush: hung, failing and slow sinks, overflow accounting, N in =
//! N out, terminal warnings and the JSON Lines sink.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crux_runtime::delivery::{FlushOptions, FlushResult, FlushStatus};
use crux_runtime::observe::{Observer, RunOptions};
use crux_runtime::record::{Record, RunStatus, SpanStatus};
use crux_runtime::sink::{JsonLines, Memory, Sink, SinkError};

#[path = "support/block_on.rs"]
mod block_on;
use block_on::block_on;

/// Blocks in `write` until released (a collector that stopped answering).
#[derive(Clone, Default)]
struct Hung {
    release: Arc<(Mutex<bool>, std::sync::Condvar)>,
    entered: Arc<AtomicBool>,
}

impl Hung {
    /// Returns once the worker is inside `write`, holding the first batch.
    fn wait_until_entered(&self) {
        while !self.entered.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn release(&self) {
        *self.release.0.lock().unwrap() = true;
        self.release.1.notify_all();
    }
}

impl Sink for Hung {
    fn write(&self, _: &[Record]) -> Result<(), SinkError> {
        self.entered.store(true, Ordering::SeqCst);
        let mut released = self.release.0.lock().unwrap();
        while !*released {
            released = self.release.1.wait(released).unwrap();
        }
        Ok(())
    }
}

struct Failing;
impl Sink for Failing {
    fn write(&self, _: &[Record]) -> Result<(), SinkError> {
        Err(SinkError::Other("collector refused".into()))
    }
}

struct Panicking;
impl Sink for Panicking {
    fn write(&self, _: &[Record]) -> Result<(), SinkError> {
        panic!("sink bug")
    }
}

#[derive(Clone, Default)]
struct Slow(Arc<AtomicUsize>);
impl Sink for Slow {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        std::thread::sleep(Duration::from_millis(20));
        self.0.fetch_add(records.len(), Ordering::SeqCst);
        Ok(())
    }
}

fn warnings() -> (
    Arc<Mutex<Vec<String>>>,
    impl Fn(&str) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = Arc::clone(&seen);
    (seen, move |msg: &str| {
        hook_seen.lock().unwrap().push(msg.to_owned())
    })
}

/// Waits until a released sink's call has returned (the circuit breaker closes then).
fn answered(o: &Observer) {
    let until = Instant::now() + Duration::from_secs(30);
    while o.stats().sink_hung && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!o.stats().sink_hung, "the released sink answered");
}

fn emit_run(o: &Observer, spans: usize) {
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let scope = run.scope();
    for _ in 0..spans {
        scope.span("s", "tool.call").start().end(SpanStatus::Ok);
    }
    run.end(RunStatus::Ok);
}

#[tokio::test]
async fn a_hung_sink_cannot_stretch_a_flush_past_its_bound() {
    let hung = Hung::default();
    let (seen, hook) = warnings();
    let o = Observer::builder()
        .sink(hung.clone())
        .on_warning(hook)
        .build();
    emit_run(&o, 3);
    // The worker is inside the hung sink's call before the flush starts, so that call
    // outlasts the flush's whole bound: deterministic whatever the other core is doing.
    let until = Instant::now() + Duration::from_secs(30);
    while !hung.entered.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        hung.entered.load(Ordering::SeqCst),
        "the worker reached the sink"
    );
    let bound = Duration::from_millis(150);
    let started = Instant::now();
    let result = o
        .flush(FlushOptions {
            timeout: bound,
            terminal: true,
        })
        .await;
    let took = started.elapsed();
    assert_eq!(result.status, FlushStatus::Deadline);
    assert!(result.deadline_exceeded);
    assert_eq!(
        result.remaining, 8,
        "all 8 records were still in the hung sink"
    );
    assert!(
        took >= bound && took < bound + Duration::from_millis(500),
        "took {took:?}"
    );
    assert_eq!(
        serde_json::to_value(result).unwrap(),
        serde_json::json!({"status": "deadline", "delivered": 0, "rejected": 0, "dropped": 0,
                           "remaining": 8, "deadlineExceeded": true, "bypassed": false})
    );
    // The sink did not answer for the flush's whole bound: the circuit breaker opens (one
    // warning), and the terminal flush that did not drain warns as well.
    let warned = seen.lock().unwrap().clone();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned[0].contains("has not answered"), "{}", warned[0]);
    assert!(
        warned[1].contains("did not fully complete"),
        "{}",
        warned[1]
    );
    assert!(warned[1].contains("status=deadline"));
    assert!(o.stats().sink_hung);

    // With the breaker open, a later flush returns at once, marked bypassed, and warns
    // no more.
    let started = Instant::now();
    let result = o
        .flush(FlushOptions {
            timeout: Duration::from_secs(5),
            terminal: true,
        })
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(result.status, FlushStatus::Deadline);
    assert!(result.bypassed);
    assert_eq!(result.remaining, 8);
    assert_eq!(seen.lock().unwrap().len(), 2);

    // The blocking flavour is bounded too.
    let started = Instant::now();
    let result = o.flush_blocking(FlushOptions {
        timeout: Duration::from_millis(50),
        terminal: false,
    });
    assert_eq!(result.status, FlushStatus::Deadline);
    assert!(started.elapsed() < Duration::from_millis(500));

    // Once the sink recovers, nothing was lost.
    hung.release();
    answered(&o);
    let result = o.flush(FlushOptions::FINAL).await;
    assert_eq!(result.status, FlushStatus::Drained);
    assert_eq!(o.stats().delivered, 8);
}

#[tokio::test]
async fn a_failing_or_panicking_sink_yields_failed_and_counts() {
    for sink in [Box::new(Failing) as Box<dyn Sink>, Box::new(Panicking)] {
        let (seen, hook) = warnings();
        let gate = Hung::default();
        let o = Observer::builder()
            .sink(GatedSink(sink, gate.clone()))
            .on_warning(hook)
            .build();
        emit_run(&o, 2);
        // The sink answers only once the flush waits, so the failure is one the flush saw
        // (a worker that delivered before it started would leave it nothing to report).
        let releaser = {
            let o = o.clone();
            std::thread::spawn(move || {
                let by = Instant::now() + Duration::from_secs(30);
                while o.stats().flush_waiters == 0 && Instant::now() < by {
                    std::thread::sleep(Duration::from_millis(1));
                }
                gate.release();
            })
        };
        let result = o.flush(FlushOptions::FINAL).await;
        releaser.join().unwrap();
        assert_eq!(result.status, FlushStatus::Failed);
        assert_eq!(result.remaining, 0);
        assert!(!result.deadline_exceeded);
        let stats = o.stats();
        assert_eq!((stats.failed, stats.delivered, stats.queued), (6, 0, 0));
        assert_eq!(seen.lock().unwrap().len(), 1, "terminal failures warn");
        // The worker survived: later records are still handled.
        emit_run(&o, 0);
        o.flush(FlushOptions::BOUNDARY).await;
        assert_eq!(o.stats().failed, 8);
    }
}

/// A sink whose writes wait at a gate (until released) before reaching the sink inside.
struct GatedSink(Box<dyn Sink>, Hung);
impl Sink for GatedSink {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        self.1.write(records)?;
        self.0.write(records)
    }
}

/// Failures the worker met before a flush began are still that flush's to report: the
/// caller's records did not reach the sinks, whichever thread tried. Reported once: the
/// next flush, with nothing failed since, drains.
#[test]
fn a_flush_reports_failures_from_before_it_began_once() {
    let o = Observer::builder().sink(Failing).build();
    emit_run(&o, 2);
    // The worker polls every 10 ms at most: wait until it has failed all six records.
    let by = Instant::now() + Duration::from_secs(30);
    while o.stats().failed < 6 && Instant::now() < by {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(o.stats().failed, 6, "the worker delivered before the flush");
    let result = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(result.status, FlushStatus::Failed);
    assert_eq!((result.delivered, result.remaining), (0, 0));

    let again = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(again.status, FlushStatus::Drained, "reported once");
}

#[tokio::test]
async fn a_slow_sink_drains_within_a_generous_bound_and_not_a_tight_one() {
    let slow = Slow::default();
    let o = Observer::builder().sink(slow.clone()).build();
    emit_run(&o, 10);
    let result = o.flush(FlushOptions::BOUNDARY).await;
    assert_eq!(result.status, FlushStatus::Drained);
    // The flush counts what it saw delivered (the worker may have started before it).
    assert!(result.delivered <= 22);
    assert_eq!(o.stats().delivered, 22);
    assert_eq!(slow.0.load(Ordering::SeqCst), 22);

    emit_run(&o, 10);
    let started = Instant::now();
    let result = o
        .flush(FlushOptions {
            timeout: Duration::from_millis(5),
            terminal: false,
        })
        .await;
    // Generous: a 5 ms bound, but a loaded 2-core machine may pause this thread.
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(result.status, FlushStatus::Deadline);
    assert!(result.remaining >= 1);
}

#[tokio::test]
async fn overflow_drops_the_oldest_and_counts_it() {
    let hung = Hung::default();
    let memory = Memory::new();
    let o = Observer::builder()
        .sink(hung.clone())
        .sink(memory.clone())
        .capacity(10)
        .build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    // Wait until the worker holds run:start inside the hung sink; then queue 25 more.
    hung.wait_until_entered();
    let scope = run.scope();
    let mut names = Vec::new();
    for i in 0..25 {
        let name = format!("span {i}");
        names.push(name.clone());
        scope.span(name, "tool.call").start().end(SpanStatus::Ok); // 2 records each
    }
    let stats = o.stats();
    assert_eq!(stats.accepted, 51);
    assert_eq!(stats.dropped, 40, "50 queued behind a hung sink, 10 kept");
    hung.release();
    assert_eq!(
        o.flush(FlushOptions::FINAL).await.status,
        FlushStatus::Drained
    );
    let kept: Vec<String> = memory
        .records()
        .iter()
        .filter(|r| r["type"] == "span:start")
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kept, names[20..].to_vec(), "the newest records survive");
    let stats = o.stats();
    assert_eq!(stats.delivered + stats.dropped, stats.accepted);
    drop(run);
}

#[test]
fn below_capacity_n_records_in_are_n_records_out_from_many_threads() {
    let memory = Memory::new();
    let o = Observer::builder()
        .sink(memory.clone())
        .capacity(100_000)
        .build();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let o = o.clone();
            s.spawn(move || {
                for _ in 0..50 {
                    emit_run(&o, 20);
                }
            });
        }
    });
    let result = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(result.status, FlushStatus::Drained);
    let n = 4 * 50 * (2 + 2 * 20);
    assert_eq!(memory.len(), n);
    let stats = o.stats();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.dropped, stats.queued),
        (n as u64, n as u64, 0, 0)
    );
}

/// A segment's sequence number is taken under the queue lock its record enters by, so
/// spans of one scope written from several threads at once reach the sinks numbered
/// 1, 2, 3, ... in the order delivered, each span's start before its end.
#[test]
fn one_segment_written_from_many_threads_reaches_the_sinks_in_sequence_order() {
    let memory = Memory::new();
    let o = Observer::builder().sink(memory.clone()).build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let scope = run.scope();
    // All four start together, so their records interleave from the first one.
    let start = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (scope, start) = (scope.clone(), &start);
            s.spawn(move || {
                start.wait();
                for i in 0..500 {
                    scope
                        .span(format!("t{t} span {i}"), "tool.call")
                        .start()
                        .end(SpanStatus::Ok);
                }
            });
        }
    });
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
    let records = memory.records();
    let n = 1 + 4 * 500 * 2;
    assert_eq!(records.len(), n);
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["segmentSeq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<u64>>());
    let mut open = std::collections::HashSet::new();
    for r in &records[1..] {
        let id = r["spanId"].as_str().unwrap().to_owned();
        match r["type"].as_str().unwrap() {
            "span:start" => assert!(open.insert(id), "one start per span"),
            "span:end" => assert!(open.remove(&id), "an end after its start"),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(open.is_empty(), "every span ended");
    let stats = o.stats();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.dropped),
        (n as u64, n as u64, 0)
    );
    drop(run);
}

#[test]
fn json_lines_appends_one_record_a_line_and_flushes() {
    let dir = std::env::temp_dir().join(format!("crux-jsonl-{}", std::process::id()));
    let path = dir.join("nested").join("records.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    for round in 1..=2 {
        let sink = JsonLines::open(&path).unwrap();
        assert_eq!(sink.path(), path);
        let o = Observer::builder().sink(sink).build();
        emit_run(&o, 3);
        assert_eq!(
            o.flush_blocking(FlushOptions::FINAL).status,
            FlushStatus::Drained
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 8 * round, "append-only across opens");
        assert_eq!(lines[0]["type"], "run:start");
    }
    assert_eq!(
        JsonLines::default_path(),
        std::path::Path::new(".crux/records.jsonl")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn flushing_a_disabled_or_idle_observer_is_immediate() {
    let r = Observer::disabled().flush(FlushOptions::FINAL).await;
    assert_eq!(r.status, FlushStatus::Drained);
    let o = Observer::builder().sink(Memory::new()).build();
    let started = Instant::now();
    assert_eq!(
        o.flush(FlushOptions::FINAL).await.status,
        FlushStatus::Drained
    );
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn flush_needs_no_tokio_and_is_woken_at_its_deadline() {
    let hung = Hung::default();
    let o = Observer::builder().sink(hung.clone()).build();
    emit_run(&o, 1);
    let started = Instant::now();
    let result = block_on(o.flush(FlushOptions {
        timeout: Duration::from_millis(80),
        terminal: false,
    }));
    assert_eq!(result.status, FlushStatus::Deadline);
    assert!(started.elapsed() < Duration::from_millis(600));
    hung.release();
    answered(&o);
    assert_eq!(
        block_on(o.flush(FlushOptions::FINAL)).status,
        FlushStatus::Drained
    );
}

#[test]
fn handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Observer>();
    send_sync::<crux_runtime::observe::Scope>();
    send_sync::<crux_runtime::observe::CapturedContext>();
    send_sync::<crux_runtime::envelope::WireContext>();
    send::<crux_runtime::observe::Run>();
    send::<crux_runtime::observe::Span>();
    send::<crux_runtime::observe::WithContext<std::future::Ready<()>>>();
}

#[test]
fn dropping_the_last_observer_handle_drains_and_flushes_the_sinks() {
    let dir = std::env::temp_dir().join(format!("crux-jsonl-drop-{}", std::process::id()));
    let path = dir.join("records.jsonl");
    let _ = std::fs::remove_dir_all(&dir);
    let o = Observer::builder()
        .sink(JsonLines::open(&path).unwrap())
        .build();
    emit_run(&o, 3);
    drop(o);
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let n = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
        if n == 8 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        lines, 8,
        "the worker drained the queue and flushed the file on shutdown"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_sink_gets_the_same_records_whether_lent_or_handed_over() {
    // The worker lends each batch to every sink but the last, which it hands the records
    // to (`write_owned`): both must end up with the same records in the same order.
    let lent = Memory::new();
    let kept = Memory::bounded(30);
    let o = Observer::builder()
        .sink(lent.clone())
        .sink(kept.clone())
        .build();
    for _ in 0..3 {
        emit_run(&o, 10);
    }
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
    let all = lent.records();
    assert_eq!(all.len(), 3 * (2 + 2 * 10));
    // The bounded sink keeps the newest 30, identical to the tail of the other.
    assert_eq!(kept.records(), all[all.len() - 30..].to_vec());
    assert_eq!(o.stats().delivered, all.len() as u64);
}

#[tokio::test]
async fn an_unbounded_flush_timeout_waits_instead_of_panicking() {
    // `Duration::MAX` reads as "as long as it takes"; it must not overflow the deadline.
    let memory = Memory::new();
    let o = Observer::builder().sink(memory.clone()).build();
    emit_run(&o, 2);
    let forever = FlushOptions {
        timeout: Duration::MAX,
        terminal: true,
    };
    let result = o.flush(forever).await;
    assert_eq!(result.status, FlushStatus::Drained);
    emit_run(&o, 1);
    assert_eq!(o.flush_blocking(forever).status, FlushStatus::Drained);
    assert_eq!(memory.len(), 6 + 4);
}

/// Queues 25 spans (50 records) behind a sink hung on `run:start`.
fn overflow_behind(hung: &Hung, run: &crux_runtime::run::Run) {
    hung.wait_until_entered();
    let scope = run.scope();
    for i in 0..25 {
        scope
            .span(format!("span {i}"), "tool.call")
            .start()
            .end(SpanStatus::Ok);
    }
}

#[test]
fn drops_are_reported_in_the_flush_result_and_once_in_a_terminal_warning() {
    let hung = Hung::default();
    let (seen, hook) = warnings();
    let o = Observer::builder()
        .sink(hung.clone())
        .capacity(10)
        .on_warning(hook)
        .build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let flusher = {
        let o = o.clone();
        std::thread::spawn(move || {
            o.flush_blocking(FlushOptions {
                timeout: Duration::from_secs(60),
                terminal: true,
            })
        })
    };
    while o.stats().flush_waiters == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    overflow_behind(&hung, &run);
    hung.release();
    let result = flusher.join().unwrap();
    assert_eq!(result.status, FlushStatus::Drained, "{result:?}");
    assert_eq!(result.dropped, 40, "dropped while it waited: {result:?}");
    let warned = seen.lock().unwrap().clone();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("40 records were dropped"),
        "{}",
        warned[0]
    );

    drop(run);
    o.flush_blocking(FlushOptions::BOUNDARY);
    let stats = o.stats();
    assert_eq!(stats.delivered + stats.dropped, stats.accepted, "{stats:?}");

    // Drops before any flush began: its result says 0, the terminal flush warns once.
    let hung = Hung::default();
    let (seen, hook) = warnings();
    let o = Observer::builder()
        .sink(hung.clone())
        .capacity(10)
        .on_warning(hook)
        .build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    overflow_behind(&hung, &run);
    hung.release();
    let silent = o.flush_blocking(FlushOptions::BOUNDARY);
    assert_eq!(silent.dropped, 0);
    assert!(
        seen.lock().unwrap().is_empty(),
        "boundary flushes stay silent"
    );
    let result = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!((result.status, result.dropped), (FlushStatus::Drained, 0));
    let again = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(again.status, FlushStatus::Drained);
    let warned = seen.lock().unwrap().clone();
    assert_eq!(
        warned.len(),
        1,
        "each drop is warned about once: {warned:?}"
    );
    assert!(warned[0].contains("40 records were dropped"), "{warned:?}");
    drop(run);
}

#[tokio::test]
async fn flushes_that_time_out_or_are_dropped_leave_no_waiter_behind() {
    let hung = Hung::default();
    let o = Observer::builder().sink(hung.clone()).build();
    emit_run(&o, 1);
    hung.wait_until_entered();
    // Many flushes in flight at once, all timing out (all started before the first one's
    // deadline, so none is bypassed).
    let bound = FlushOptions {
        timeout: Duration::from_millis(300),
        terminal: false,
    };
    let flushes: Vec<_> = (0..500).map(|_| o.flush(bound)).collect();
    let results = futures_join(flushes).await;
    assert!(
        results
            .iter()
            .all(|r| r.status == FlushStatus::Deadline && r.remaining == 4),
        "{:?}",
        results.first()
    );
    assert_eq!(o.stats().flush_waiters, 0, "{:?}", o.stats());

    // Flush futures dropped before their end (a caller's own timeout) leave none either.
    hung.release();
    answered(&o);
    let hung2 = Hung::default();
    let o = Observer::builder().sink(hung2.clone()).build();
    emit_run(&o, 1);
    for _ in 0..500 {
        let r = tokio::time::timeout(
            Duration::from_micros(10),
            o.flush(FlushOptions {
                timeout: Duration::MAX,
                terminal: false,
            }),
        )
        .await;
        assert!(r.is_err(), "cut short by the caller");
    }
    let stats = o.stats();
    assert!(stats.flush_waiters <= 1, "{stats:?}");
    assert!(!stats.sink_hung, "no flush reached a deadline");
    hung2.release();
    assert_eq!(
        o.flush(FlushOptions::FINAL).await.status,
        FlushStatus::Drained
    );
    assert_eq!(o.stats().flush_waiters, 0);
}

/// Polls every future to completion concurrently (no extra dependency).
async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[test]
fn a_hung_sink_is_bypassed_until_it_answers_and_the_loss_is_counted() {
    let hung = Hung::default();
    let memory = Memory::new();
    let (seen, hook) = warnings();
    let o = Observer::builder()
        .sink(hung.clone())
        .sink(memory.clone())
        .capacity(10)
        .on_warning(hook)
        .build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    hung.wait_until_entered();
    // The first flush pays its bound: the sink did not answer for all of it.
    let first = o.flush_blocking(FlushOptions {
        timeout: Duration::from_millis(100),
        terminal: false,
    });
    assert_eq!(first.status, FlushStatus::Deadline);
    assert!(!first.bypassed);
    assert!(o.stats().sink_hung, "the circuit opened");
    assert_eq!(seen.lock().unwrap().len(), 1, "one warning when it opens");
    assert!(seen.lock().unwrap()[0].contains("has not answered"));

    // Later flushes, terminal or not, do not wait while the same call hangs.
    let bound = Duration::from_secs(2);
    for terminal in [true, false, true] {
        let started = Instant::now();
        let r = o.flush_blocking(FlushOptions {
            timeout: bound,
            terminal,
        });
        assert!(
            started.elapsed() < bound / 2,
            "took {:?}",
            started.elapsed()
        );
        assert!(r.bypassed && r.deadline_exceeded, "{r:?}");
        assert_eq!(r.status, FlushStatus::Deadline);
        assert_eq!(r.remaining, 1, "run:start is still in the sink");
    }
    assert_eq!(seen.lock().unwrap().len(), 1, "bypassed flushes stay quiet");

    // Memory stays bounded by the capacity; the overflow is counted.
    overflow_behind(&hung, &run);
    let stats = o.stats();
    assert_eq!(stats.dropped, 40);
    assert_eq!(
        stats.queued, 11,
        "10 queued + 1 in the hung sink: {stats:?}"
    );
    assert_eq!(stats.flush_waiters, 0, "{stats:?}");
    assert_eq!(stats.bypassed_flushes, 3);

    // It answers: the circuit closes and flushes wait again.
    hung.release();
    answered(&o);
    let r = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(r.status, FlushStatus::Drained, "{r:?}");
    assert!(!r.bypassed);
    let stats = o.stats();
    assert_eq!(stats.delivered, 11);
    assert_eq!(stats.delivered + stats.dropped, stats.accepted);
    assert_eq!(memory.records().len(), 11);
    let warned = seen.lock().unwrap().clone();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned[1].contains("40 records were dropped"), "{warned:?}");
    drop(run);
}

// --- Flushes that deliver on their own thread (sinks that write promptly) ---

/// One sink call seen by [`Ledger`]: the record's run, its place in the segment and its
/// record id's counter; `None` for a `flush` call. With the thread that made the call.
#[derive(Clone, Debug)]
struct Call {
    record: Option<(crux_runtime::ids::RunId, u32, u64)>,
    thread: String,
}

/// Notes every record and every flush call with the calling thread's name. Promises to
/// write promptly when `prompt`; panics in `write` when `panics`.
#[derive(Clone, Default)]
struct Ledger {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Records written per run.
    written: Arc<Mutex<std::collections::HashMap<crux_runtime::ids::RunId, usize>>>,
    prompt: bool,
    panics: bool,
    /// Says its `flush` has no work to do ([`Sink::needs_flush`] `false`).
    nothing_to_flush: bool,
}

impl Ledger {
    fn prompt() -> Self {
        Ledger {
            prompt: true,
            ..Ledger::default()
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// How many records of `run` were written.
    fn written(&self, run: crux_runtime::ids::RunId) -> usize {
        self.written.lock().unwrap().get(&run).copied().unwrap_or(0)
    }
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

impl Sink for Ledger {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        let thread = thread_name();
        let mut calls = self.calls.lock().unwrap();
        let mut written = self.written.lock().unwrap();
        for r in records {
            *written.entry(r.base.run_id).or_default() += 1;
            let id = r.base.record_id.expect("ids are given before the sinks");
            calls.push(Call {
                record: Some((r.base.run_id, r.base.segment_seq, id.counter)),
                thread: thread.clone(),
            });
        }
        drop((calls, written));
        if self.panics {
            panic!("sink bug on {thread}");
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), SinkError> {
        self.calls.lock().unwrap().push(Call {
            record: None,
            thread: thread_name(),
        });
        Ok(())
    }

    fn writes_promptly(&self) -> bool {
        self.prompt
    }

    fn needs_flush(&self) -> bool {
        !self.nothing_to_flush
    }
}

const WORKER: &str = "crux-delivery";

#[test]
fn a_sink_with_nothing_to_flush_is_never_flushed_and_still_gets_every_record() {
    // Delivered on the flushing thread (prompt sinks) and by the worker (not prompt); the
    // sink that needs no flush registered last, then first.
    for (prompt, unflushed_first) in [(true, false), (false, false), (true, true), (false, true)] {
        let flushed = Ledger {
            prompt,
            ..Ledger::default()
        };
        let unflushed = Ledger {
            prompt,
            nothing_to_flush: true,
            ..Ledger::default()
        };
        let o = if unflushed_first {
            Observer::builder()
                .sink(unflushed.clone())
                .sink(flushed.clone())
        } else {
            Observer::builder()
                .sink(flushed.clone())
                .sink(unflushed.clone())
        }
        .build();
        for i in 0..10 {
            let run = o.open_run(RunOptions::new("r", "agent.run"));
            let run_id = run.run_id();
            run.scope()
                .span("s", "tool.call")
                .start()
                .end(SpanStatus::Ok);
            run.end(RunStatus::Ok);
            let result = o.flush_blocking(FlushOptions::BOUNDARY);
            assert_eq!(result.status, FlushStatus::Drained, "prompt {prompt}");
            for ledger in [&flushed, &unflushed] {
                assert_eq!(ledger.written(run_id), 4, "prompt {prompt}, run {i}");
            }
            let flushes = |l: &Ledger| l.calls().iter().filter(|c| c.record.is_none()).count();
            assert!(
                flushes(&flushed) > i,
                "prompt {prompt}: a flush flushes the sink"
            );
            assert_eq!(flushes(&unflushed), 0, "prompt {prompt}: never flushed");
        }
        // Both saw the same records in the same order.
        let records =
            |l: &Ledger| -> Vec<_> { l.calls().iter().filter_map(|c| c.record).collect() };
        assert_eq!(records(&flushed), records(&unflushed));
        assert_eq!((o.stats().delivered, o.stats().failed), (40, 0));
    }
}

#[test]
fn a_flush_with_prompt_sinks_delivers_on_its_own_thread_and_sees_every_record() {
    let ledger = Ledger::prompt();
    let o = Observer::builder().sink(ledger.clone()).build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for i in 0..100 {
        let run = o.open_run(RunOptions::new("r", "agent.run"));
        let scope = run.scope();
        for _ in 0..3 {
            scope.span("s", "tool.call").start().end(SpanStatus::Ok);
        }
        // Both flavours; each sees the 7 records pushed before it.
        let result = if i % 2 == 0 {
            o.flush_blocking(FlushOptions::BOUNDARY)
        } else {
            runtime.block_on(o.flush(FlushOptions::BOUNDARY))
        };
        assert_eq!(result.status, FlushStatus::Drained);
        assert_eq!(ledger.written(run.run_id()), 7, "flush {i}");
        run.end(RunStatus::Ok);
    }
    o.flush_blocking(FlushOptions::FINAL);
    let stats = o.stats();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.queued),
        (800, 800, 0)
    );
    assert_eq!((stats.failed, stats.dropped, stats.rejected), (0, 0, 0));
    assert_eq!(stats.flush_waiters, 0);
    // The worker polls (every 10 ms with prompt sinks) and may take some; the flushes took
    // the rest.
    let me = thread_name();
    let calls = ledger.calls();
    let inline = calls.iter().filter(|c| c.thread == me).count();
    assert!(inline > 0, "no sink call was made on the flushing thread");
    assert!(calls.iter().all(|c| c.thread == me || c.thread == WORKER));
}

#[tokio::test]
async fn sinks_that_do_not_promise_promptness_are_only_called_on_the_delivery_thread() {
    // A slow sink alone, and a prompt one beside it: either way the flushing thread waits.
    let slow = Ledger::default();
    let prompt = Ledger::prompt();
    for o in [
        Observer::builder().sink(slow.clone()).build(),
        Observer::builder()
            .sink(prompt.clone())
            .sink(slow.clone())
            .build(),
    ] {
        for _ in 0..20 {
            emit_run(&o, 2);
            assert_eq!(
                o.flush(FlushOptions::BOUNDARY).await.status,
                FlushStatus::Drained
            );
            emit_run(&o, 1);
            assert_eq!(
                o.flush_blocking(FlushOptions::BOUNDARY).status,
                FlushStatus::Drained
            );
        }
        assert_eq!(o.stats().delivered, 20 * (6 + 4));
    }
    for calls in [slow.calls(), prompt.calls()] {
        assert!(!calls.is_empty());
        assert!(calls.iter().all(|c| c.thread == WORKER), "{calls:?}");
    }
}

/// A sink that promises to write promptly but hangs like [`Hung`] until released; notes
/// the thread of every `write` after the release (a flush's `Sink::flush` call alone would
/// not show records delivered on that thread).
#[derive(Clone, Default)]
struct PromptButStuck {
    hung: Hung,
    threads: Arc<Mutex<Vec<String>>>,
}
impl PromptButStuck {
    fn note(&self) {
        if *self.hung.release.0.lock().unwrap() {
            self.threads.lock().unwrap().push(thread_name());
        }
    }
}
impl Sink for PromptButStuck {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        self.note();
        self.hung.write(records)
    }
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
    fn writes_promptly(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_flush_waits_bounded_when_the_worker_is_delivering_and_helps_once_it_is_done() {
    async fn flush(o: &Observer, blocking: bool, opts: FlushOptions) -> FlushResult {
        if blocking {
            o.flush_blocking(opts)
        } else {
            o.flush(opts).await
        }
    }
    for blocking in [true, false] {
        // An observer for each flavour: a flush reaching its deadline during the stuck
        // call opens the circuit breaker, and a second flush would not wait at all.
        let stuck = PromptButStuck::default();
        let memory = Memory::new();
        let (_, hook) = warnings();
        let o = Observer::builder()
            .sink(stuck.clone())
            .sink(memory.clone())
            .on_warning(hook)
            .build();
        emit_run(&o, 3);
        stuck.hung.wait_until_entered();
        // The worker holds the delivery lock: the flush cannot deliver, and waits until
        // its bound.
        emit_run(&o, 1);
        let bound = Duration::from_millis(150);
        let started = Instant::now();
        let opts = FlushOptions {
            timeout: bound,
            terminal: false,
        };
        let result = flush(&o, blocking, opts).await;
        let took = started.elapsed();
        assert!(!result.bypassed, "blocking {blocking}: the flush waited");
        assert!(
            took >= bound && took < bound + Duration::from_millis(500),
            "blocking {blocking}: took {took:?}"
        );
        assert_eq!(result.status, FlushStatus::Deadline);
        assert!(result.deadline_exceeded);
        assert_eq!(result.remaining, 12, "8 in the stuck call, 4 queued");
        assert_eq!(o.stats().flush_waiters, 0, "the flush that gave up is gone");

        // Once the worker's call is done, a flush delivers on its own thread again (the
        // worker polls too, so it may take a round's records first: a few rounds).
        stuck.hung.release();
        answered(&o);
        let me = thread_name();
        let mut rounds = 0;
        while !stuck.threads.lock().unwrap().contains(&me) {
            assert!(rounds < 20, "blocking {blocking}: no flush helped");
            rounds += 1;
            emit_run(&o, 1);
            let result = flush(&o, blocking, FlushOptions::FINAL).await;
            assert!(!result.bypassed);
            assert_eq!(result.status, FlushStatus::Drained);
            assert_eq!(result.remaining, 0);
        }
        let stats = o.stats();
        let total = 12 + 4 * rounds;
        assert_eq!(
            (stats.delivered, stats.queued, stats.flush_waiters),
            (total, 0, 0)
        );
        assert_eq!(memory.len() as u64, total);
        assert!(
            stuck
                .threads
                .lock()
                .unwrap()
                .iter()
                .all(|t| *t == me || t == WORKER)
        );
    }
}

#[test]
fn a_sink_panicking_during_an_inline_flush_is_caught_and_counted() {
    let ledger = Ledger {
        prompt: true,
        panics: true,
        ..Ledger::default()
    };
    let (seen, hook) = warnings();
    let o = Observer::builder()
        .sink(ledger.clone())
        .on_warning(hook)
        .build();
    for i in 1..=20u64 {
        emit_run(&o, 2);
        let result = o.flush_blocking(FlushOptions::FINAL);
        assert_eq!(result.status, FlushStatus::Failed);
        assert_eq!(result.remaining, 0);
        let stats = o.stats();
        assert_eq!((stats.failed, stats.delivered, stats.queued), (6 * i, 0, 0));
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        20,
        "each terminal failure warns"
    );
    let me = thread_name();
    assert!(
        ledger
            .calls()
            .iter()
            .any(|c| c.record.is_some() && c.thread == me),
        "no write panicked on the flushing thread"
    );
}

/// Flushes the observer it is given from inside its own `write`, after recording a run
/// into it while `runs` lasts.
#[derive(Clone, Default)]
struct Reentrant {
    observer: Arc<Mutex<Option<Observer>>>,
    nested: Arc<Mutex<Vec<FlushStatus>>>,
    runs: Arc<AtomicUsize>,
    /// Writes in progress.
    inside: Arc<AtomicUsize>,
}
impl Sink for Reentrant {
    fn write(&self, _: &[Record]) -> Result<(), SinkError> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        let observer = self.observer.lock().unwrap().clone();
        if let Some(o) = observer {
            let take = |n: usize| n.checked_sub(1);
            if self
                .runs
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
                .is_ok()
            {
                emit_run(&o, 0);
            }
            let r = o.flush_blocking(FlushOptions {
                timeout: Duration::from_millis(50),
                terminal: false,
            });
            self.nested.lock().unwrap().push(r.status);
        }
        self.inside.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
    fn writes_promptly(&self) -> bool {
        true
    }
}

#[test]
fn a_flush_from_inside_a_prompt_sink_does_not_deadlock() {
    let sink = Reentrant::default();
    let (_, hook) = warnings();
    let o = Observer::builder()
        .sink(sink.clone())
        .on_warning(hook)
        .build();
    *sink.observer.lock().unwrap() = Some(o.clone());
    for _ in 0..3 {
        emit_run(&o, 1);
        let started = Instant::now();
        let result = o.flush_blocking(FlushOptions::BOUNDARY);
        // The nested flush cannot be delivered while its own pass is in the sink: it
        // waits out its 50 ms bound, and the outer one finishes after it.
        assert!(started.elapsed() < Duration::from_secs(2), "{result:?}");
    }
    // Break the cycle (the sink holds the observer), then check nothing was lost.
    sink.observer.lock().unwrap().take();
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
    assert_eq!(o.stats().delivered, 12);
    assert!(!sink.nested.lock().unwrap().is_empty());
}

/// Rounds per thread of the racing test (`CRUX_INLINE_STRESS_ROUNDS`, default 100; run it
/// with thousands in release).
fn stress_rounds() -> usize {
    std::env::var("CRUX_INLINE_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

#[test]
fn flushes_racing_each_other_and_the_worker_keep_order_and_exact_counts() {
    let ledger = Ledger::prompt();
    let o = Observer::builder().sink(ledger.clone()).build();
    let rounds = stress_rounds();
    // Four threads flush after a few spans each round (inline or helping); a fifth
    // pushes bursts larger than a flush delivers itself, so its flushes hand off to the
    // worker, and every thread's flush races the others' passes and the worker's polls.
    let threads: Vec<_> = (0..5)
        .map(|t| {
            let (o, ledger) = (o.clone(), ledger.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let run = o.open_run(RunOptions::new("r", "agent.run"));
                let scope = run.scope();
                let mut pushed = 1; // run:start
                for round in 0..rounds {
                    let spans = if t == 4 { 150 } else { 1 + round % 3 };
                    for _ in 0..spans {
                        scope.span("s", "tool.call").start().end(SpanStatus::Ok);
                    }
                    pushed += 2 * spans;
                    let result = if round % 2 == 0 {
                        o.flush_blocking(FlushOptions::BOUNDARY)
                    } else {
                        runtime.block_on(o.flush(FlushOptions::BOUNDARY))
                    };
                    assert_eq!(result.status, FlushStatus::Drained, "thread {t}");
                    // Everything this thread pushed before the flush was written.
                    assert_eq!(ledger.written(run.run_id()), pushed, "thread {t}");
                }
                run.end(RunStatus::Ok);
                pushed + 1
            })
        })
        .collect();
    let pushed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
    let stats = o.stats();
    assert_eq!(
        (stats.accepted, stats.delivered),
        (pushed as u64, pushed as u64)
    );
    assert_eq!(
        (stats.failed, stats.dropped, stats.rejected, stats.queued),
        (0, 0, 0, 0)
    );
    assert_eq!(stats.flush_waiters, 0);

    // In delivery order: each run's records in sequence without gaps, and record ids
    // given in delivery order without gaps, whichever thread delivered.
    let calls = ledger.calls();
    let mut next_seq = std::collections::HashMap::new();
    let mut counter = 0;
    let mut threads = std::collections::HashSet::new();
    for call in &calls {
        threads.insert(call.thread.clone());
        let Some((run, seq, id)) = call.record else {
            continue;
        };
        let expected = next_seq.entry(run).or_insert(1u32);
        assert_eq!(seq, *expected, "run {run:?} out of order");
        *expected += 1;
        counter += 1;
        assert_eq!(id, counter, "record ids out of delivery order");
    }
    assert_eq!(counter, pushed as u64);
    assert!(threads.len() > 1, "only one thread delivered: {threads:?}");
}

#[test]
fn two_observers_whose_prompt_sinks_flush_each_other_do_not_deadlock() {
    let (to_b, to_a) = (Reentrant::default(), Reentrant::default());
    // Each sink records runs into the other observer too, so both keep having records.
    to_b.runs.store(10, Ordering::SeqCst);
    to_a.runs.store(10, Ordering::SeqCst);
    let quiet = || warnings().1;
    let a = Observer::builder()
        .sink(to_b.clone())
        .on_warning(quiet())
        .build();
    let b = Observer::builder()
        .sink(to_a.clone())
        .on_warning(quiet())
        .build();
    *to_b.observer.lock().unwrap() = Some(b.clone());
    *to_a.observer.lock().unwrap() = Some(a.clone());
    let started = Instant::now();
    // Each thread's flush delivers its observer's records, whose sink flushes the other
    // observer while the other thread's flush does the same the other way round.
    let threads: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|o| {
            std::thread::spawn(move || {
                for _ in 0..5 {
                    emit_run(&o, 1);
                    o.flush_blocking(FlushOptions::BOUNDARY);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    to_b.observer.lock().unwrap().take();
    to_a.observer.lock().unwrap().take();
    // A worker's pass may still be inside a sink call whose nested flush waits (50 ms) for
    // the other observer; if a deadline passes during that call, the circuit breaker opens
    // until it returns, and a flush then would be bypassed. The sinks no longer start
    // nested flushes, so every call in progress returns within its bound: wait for that.
    let closed_by = Instant::now() + Duration::from_secs(10);
    let busy = |s: &Reentrant| s.inside.load(Ordering::SeqCst) > 0;
    while busy(&to_a) || busy(&to_b) || a.stats().sink_hung || b.stats().sink_hung {
        assert!(Instant::now() < closed_by, "a sink call never returned");
        std::thread::sleep(Duration::from_millis(5));
    }
    for (o, into_it) in [(&a, &to_a), (&b, &to_b)] {
        assert_eq!(
            o.flush_blocking(FlushOptions::FINAL).status,
            FlushStatus::Drained
        );
        let stats = o.stats();
        assert_eq!((stats.delivered, stats.queued), (stats.accepted, 0));
        // Its own 20 records and the runs of 2 the other observer's sink recorded.
        let runs = 10 - into_it.runs.load(Ordering::SeqCst) as u64;
        assert!(runs > 0);
        assert_eq!(stats.accepted, 20 + 2 * runs);
    }
}

/// Plain spans and spans with attributes or metrics, mixed: below capacity every record
/// arrives in segment order; over it, the oldest records are the ones dropped, whatever
/// their shape, and the counters add up. (Kept from the compact-entries experiment, whose
/// queue held the two shapes in two lists.)
#[test]
fn plain_and_extra_span_records_keep_their_order_and_the_bound_drops_the_oldest() {
    /// Records 12 spans of three shapes (24 records): start and end compact; start full
    /// (an attribute), end compact; start compact, end full (a metric).
    fn mixed(run: &crux_runtime::run::Run) {
        let scope = run.scope();
        for i in 0..12 {
            let mut builder = scope.span(format!("span {i}"), "tool.call");
            if i % 3 == 1 {
                builder = builder.attr("k", i as i64);
            }
            let mut span = builder.start();
            if i % 3 == 2 {
                span.set_metric("inputTokens", i as f64).unwrap();
            }
            span.end(SpanStatus::Ok);
        }
    }
    /// `(segmentSeq, type, name or span id's owner)` of each record after `run:start`.
    fn shape(records: &[serde_json::Value]) -> Vec<(u64, String, bool)> {
        records
            .iter()
            .map(|r| {
                (
                    r["segmentSeq"].as_u64().unwrap(),
                    r["type"].as_str().unwrap().to_owned(),
                    r.get("attributes").is_some() || r.get("metrics").is_some(),
                )
            })
            .collect()
    }
    let expected: Vec<(u64, String, bool)> = (0..12u64)
        .flat_map(|i| {
            [
                (2 + 2 * i, "span:start".to_owned(), i % 3 == 1),
                (3 + 2 * i, "span:end".to_owned(), i % 3 == 2),
            ]
        })
        .collect();

    // Below capacity: all 24, in order, the full ones carrying their extras.
    let memory = Memory::new();
    let o = Observer::builder().sink(memory.clone()).build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    mixed(&run);
    assert_eq!(
        o.flush_blocking(FlushOptions::BOUNDARY).status,
        FlushStatus::Drained
    );
    let records = memory.records();
    assert_eq!(records[0]["type"], "run:start");
    assert_eq!(shape(&records[1..]), expected);
    let names: Vec<&str> = records[1..]
        .iter()
        .filter(|r| r["type"] == "span:start")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        (0..12).map(|i| format!("span {i}")).collect::<Vec<_>>()
    );
    drop(run);

    // Capacity 10 behind a sink hung on `run:start`: the newest 10 of the 24 survive.
    let hung = Hung::default();
    let memory = Memory::new();
    let o = Observer::builder()
        .sink(hung.clone())
        .sink(memory.clone())
        .capacity(10)
        .build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    hung.wait_until_entered();
    mixed(&run);
    hung.release();
    assert_eq!(
        o.flush_blocking(FlushOptions::BOUNDARY).status,
        FlushStatus::Drained
    );
    let records = memory.records();
    assert_eq!(records[0]["type"], "run:start");
    assert_eq!(shape(&records[1..]), expected[14..].to_vec());
    let stats = o.stats();
    assert_eq!((stats.accepted, stats.dropped), (25, 14), "{stats:?}");
    assert_eq!(stats.delivered, 11, "{stats:?}");
    drop(run);
}

#[test]
fn records_queued_past_the_queues_allocation_all_arrive_in_order() {
    // The worker holds `run:start` inside a hung sink, so the 6 000 span records below all
    // wait in the queue at once: it grows at least once past its first buffer, each record
    // written into its slot.
    let hung = Hung::default();
    let memory = Memory::new();
    let o = Observer::builder()
        .sink(hung.clone())
        .sink(memory.clone())
        .capacity(20_000)
        .build();
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    hung.wait_until_entered();
    let scope = run.scope();
    for i in 0..3_000 {
        let mut span = scope.span(format!("span {i}"), "tool.call").start();
        span.set_attr("i", i as i64);
        span.end(SpanStatus::Ok);
    }
    hung.release();
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
    let records = memory.records();
    assert_eq!(records.len(), 6_001);
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["segmentSeq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=6_001).collect::<Vec<u64>>(),
        "segment order kept"
    );
    for (i, pair) in records[1..].chunks(2).enumerate() {
        assert_eq!(pair[0]["type"], "span:start");
        assert_eq!(pair[0]["name"], format!("span {i}"));
        assert_eq!(pair[1]["type"], "span:end");
        assert_eq!(pair[1]["spanId"], pair[0]["spanId"]);
        assert_eq!(pair[1]["attributes"]["i"], i as i64);
    }
    let stats = o.stats();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.dropped),
        (6_001, 6_001, 0)
    );
    drop(run);
}

#[test]
fn a_reader_converting_many_records_does_not_hold_up_flushes_delivering_to_memory() {
    let memory = Memory::new();
    let o = Observer::builder().sink(memory.clone()).build();
    // Converting 5 000 records to JSON takes a reader many milliseconds.
    emit_run(&o, 2_499);
    assert_eq!(
        o.flush_blocking(FlushOptions::FINAL).status,
        FlushStatus::Drained
    );
    assert_eq!(memory.len(), 5_000);

    let (start, started) = std::sync::mpsc::channel::<()>();
    let (converting, conversion) = std::sync::mpsc::channel::<Option<Duration>>();
    let reader = {
        let memory = memory.clone();
        std::thread::spawn(move || {
            for () in started {
                converting.send(None).unwrap();
                let began = Instant::now();
                assert!(memory.records().len() >= 5_000);
                converting.send(Some(began.elapsed())).unwrap();
            }
        })
    };
    // Timed on a shared machine, so judged over rounds: one preempted flush must not fail
    // the test, while a flush waiting for the reader's lock fails every round.
    let mut rounds = Vec::new();
    for _ in 0..5 {
        start.send(()).unwrap();
        assert_eq!(conversion.recv().unwrap(), None);
        // Let the reader take the Memory's lock and get well into its conversion.
        std::thread::sleep(Duration::from_millis(10));
        emit_run(&o, 1);
        // The flush delivers on this thread (Memory writes promptly), into the Memory
        // the reader is converting.
        let flush_started = Instant::now();
        let result = o.flush_blocking(FlushOptions::BOUNDARY);
        let flush = flush_started.elapsed();
        let converted = conversion.recv().unwrap().unwrap();
        assert_eq!(result.status, FlushStatus::Drained);
        assert_eq!(result.remaining, 0);
        rounds.push((flush, converted));
    }
    // Waiting for the reader's lock, a flush would last about as long as the rest of the
    // conversion.
    let quick = rounds
        .iter()
        .filter(|(flush, conversion)| *flush * 4 < *conversion);
    assert!(
        quick.count() >= 3,
        "flushes (flush, conversion) held up by a reader: {rounds:?}"
    );
    drop(start);
    reader.join().unwrap();
    assert_eq!(memory.len(), 5_000 + 5 * 4);
}

/// A prompt sink noting the thread that wrote each record, which blocks its first `write`
/// made on a thread named `holder` until released (a flushing thread's pass that takes a
/// while, holding the delivery lock).
#[derive(Clone, Default)]
struct HeldOnce {
    gate: Hung,
    held: Arc<AtomicBool>,
    writers: Arc<Mutex<Vec<(crux_runtime::ids::RunId, String)>>>,
}
impl Sink for HeldOnce {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        let thread = thread_name();
        self.writers
            .lock()
            .unwrap()
            .extend(records.iter().map(|r| (r.base.run_id, thread.clone())));
        if thread == "holder" && !self.held.swap(true, Ordering::SeqCst) {
            self.gate.write(records)?;
        }
        Ok(())
    }
    fn writes_promptly(&self) -> bool {
        true
    }
}

#[test]
fn a_flush_finding_another_threads_pass_under_way_is_completed_by_that_pass_without_the_worker() {
    let sink = HeldOnce::default();
    let o = Observer::builder().sink(sink.clone()).build();
    // A thread whose flush delivers on its own thread and is held in the sink (the worker
    // may take a round's records first: it flushes until its own pass was held).
    let holder = {
        let (o, sink) = (o.clone(), sink.clone());
        std::thread::Builder::new()
            .name("holder".into())
            .spawn(move || {
                for _ in 0..1_000 {
                    emit_run(&o, 1);
                    let result = o.flush_blocking(FlushOptions::FINAL);
                    assert_eq!(result.status, FlushStatus::Drained);
                    if sink.held.load(Ordering::SeqCst) {
                        return;
                    }
                }
                panic!("no flush of this thread delivered on it in 1 000 rounds");
            })
            .unwrap()
    };
    // Bounded: a holder that panicked (or never delivered on its own thread) fails the
    // test instead of hanging it.
    let entered_by = Instant::now() + Duration::from_secs(30);
    while !sink.gate.entered.load(Ordering::SeqCst) {
        assert!(
            !holder.is_finished(),
            "the holder stopped before its pass was held"
        );
        assert!(Instant::now() < entered_by, "no pass was held within 30 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Released once this thread's flush waits, and has long stopped spinning (it has
    // called the worker and sleeps).
    let releaser = {
        let (o, sink) = (o.clone(), sink.clone());
        std::thread::spawn(move || {
            while o.stats().flush_waiters == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(20));
            sink.gate.release();
        })
    };
    let run = o.open_run(RunOptions::new("r", "agent.run"));
    let run_id = run.run_id();
    run.scope()
        .span("s", "tool.call")
        .start()
        .end(SpanStatus::Ok);
    run.end(RunStatus::Ok);
    let result = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(result.status, FlushStatus::Drained);
    assert_eq!(result.remaining, 0);
    releaser.join().unwrap();
    holder.join().unwrap();
    // The holder's thread, before it let go of the delivery lock, delivered the records
    // of the flush that had found its pass under way: neither the worker nor the waiting
    // thread made a sink call for them.
    let writers: Vec<String> = sink
        .writers
        .lock()
        .unwrap()
        .iter()
        .filter(|(run, _)| *run == run_id)
        .map(|(_, thread)| thread.clone())
        .collect();
    assert_eq!(writers, vec!["holder"; 4]);
    let stats = o.stats();
    assert_eq!((stats.queued, stats.flush_waiters, stats.failed), (0, 0, 0));
    assert_eq!(stats.delivered, stats.accepted);
}

#[test]
fn with_prompt_sinks_the_worker_still_delivers_records_nobody_flushes() {
    let ledger = Ledger::prompt();
    let o = Observer::builder().sink(ledger.clone()).build();
    // Records trickling in (the worker polling) and, after a pause, arriving at an idle
    // worker (the first producer wakes it): none is flushed.
    for round in 0..3 {
        let run = o.open_run(RunOptions::new("r", "agent.run"));
        let run_id = run.run_id();
        for _ in 0..5 {
            run.scope()
                .span("s", "tool.call")
                .start()
                .end(SpanStatus::Ok);
            std::thread::sleep(Duration::from_millis(2));
        }
        run.end(RunStatus::Ok);
        let until = Instant::now() + Duration::from_secs(10);
        while ledger.written(run_id) < 12 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(ledger.written(run_id), 12, "round {round}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls = ledger.calls();
    assert!(calls.iter().all(|c| c.thread == WORKER), "{calls:?}");
    let stats = o.stats();
    assert_eq!((stats.accepted, stats.delivered, stats.queued), (36, 36, 0));
}

/// A prompt sink that records into crux from its own `write` (an event, a span: as a
/// sink's own `tracing` instrumentation would through `CruxLayer`), and notes whether it
/// saw a Crux context.
#[derive(Clone, Default)]
struct RecordingSink {
    /// Whether each write ran inside a Crux context, and on which thread.
    in_context: Arc<Mutex<Vec<(bool, String)>>>,
}
impl Sink for RecordingSink {
    fn write(&self, _: &[Record]) -> Result<(), SinkError> {
        self.in_context
            .lock()
            .unwrap()
            .push((crux_runtime::observe::in_context(), thread_name()));
        crux_runtime::observe::event("sink.note", crux_runtime::attributes::Attributes::new());
        crux_runtime::observe::span("sink.work", "tool.call")
            .start()
            .end(SpanStatus::Ok);
        Ok(())
    }
    fn writes_promptly(&self) -> bool {
        true
    }
}

/// A flush delivering on its caller's thread calls the sinks outside the caller's Crux
/// context, as the delivery thread does: what a sink records never joins the caller's run,
/// and the caller's context is back once the flush returns.
#[test]
fn sinks_called_on_a_flushing_thread_do_not_record_into_the_callers_run() {
    let sink = RecordingSink::default();
    let memory = Memory::new();
    let o = Observer::builder()
        .sink(sink.clone())
        .sink(memory.clone())
        .build();
    let run = o.open_run(RunOptions::new("caller", "agent.run"));
    let run_id = run.run_id();
    {
        let _in_run = run.scope().enter();
        let span = crux_runtime::observe::span("step", "tool.call").start();
        let in_span = span.scope().expect("a span in a run has a scope");
        let _in_span = in_span.enter();
        for _ in 0..3 {
            crux_runtime::observe::event(
                "caller.note",
                crux_runtime::attributes::Attributes::new(),
            );
            let flushed = o.flush_blocking(FlushOptions::BOUNDARY);
            assert_eq!(flushed.status, FlushStatus::Drained);
            assert!(
                crux_runtime::observe::in_span(),
                "the caller's span is current again"
            );
        }
        drop(_in_span);
        span.end(SpanStatus::Ok);
    }
    run.end(RunStatus::Ok);
    o.flush_blocking(FlushOptions::FINAL);
    let seen = sink.in_context.lock().unwrap().clone();
    assert!(
        seen.iter().any(|(_, thread)| thread != WORKER),
        "no write ran on a flushing thread: {seen:?}"
    );
    assert!(seen.iter().all(|(inside, _)| !inside), "{seen:?}");
    let names: Vec<String> = memory
        .records_of_run(run_id)
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "caller.note").count(),
        3,
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("sink.")),
        "a sink's records joined the caller's run: {names:?}"
    );
    assert_eq!(
        memory.len(),
        memory.records_of_run(run_id).len(),
        "no other run"
    );
}

/// A waker whose `wake` panics: a broken executor.
struct PanickingWake;
impl std::task::Wake for PanickingWake {
    fn wake(self: Arc<Self>) {
        panic!("this executor's waker panics");
    }
}

#[test]
fn a_panicking_waker_costs_only_its_own_flush_its_wake_up() {
    use std::task::{Context, Poll, Waker};
    let hung = Hung::default();
    let o = Observer::builder().sink(hung.clone()).build();
    emit_run(&o, 1);
    hung.wait_until_entered();
    emit_run(&o, 1);
    // Two flushes wait for the same pass: first one whose waker panics, then another.
    let waker = Waker::from(Arc::new(PanickingWake));
    let mut broken = Box::pin(o.flush(FlushOptions::FINAL));
    assert!(
        broken
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let second = {
        let o = o.clone();
        std::thread::spawn(move || o.flush_blocking(FlushOptions::FINAL))
    };
    // Bounded: a flush that never registers fails the test instead of hanging it.
    let listed_by = Instant::now() + Duration::from_secs(30);
    while o.stats().flush_waiters < 2 {
        assert!(Instant::now() < listed_by, "the second flush never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    hung.release();
    // The worker completes both: the panic in the first one's wake-up does not leave the
    // second waiting for its deadline, nor kill the worker.
    assert_eq!(second.join().unwrap().status, FlushStatus::Drained);
    let Poll::Ready(result) = broken
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    else {
        panic!("the flush whose waker panicked was not completed");
    };
    assert_eq!(result.status, FlushStatus::Drained);
    // The worker still delivers: a later run's records all reach the sink (the worker may
    // take some before the flush starts, so the flush's own count is not the test).
    emit_run(&o, 1);
    let result = o.flush_blocking(FlushOptions::FINAL);
    assert_eq!(result.status, FlushStatus::Drained);
    let stats = o.stats();
    assert_eq!(
        (stats.delivered, stats.queued, stats.failed),
        (stats.accepted, 0, 0)
    );
}

#[test]
fn a_panicking_waker_at_its_deadline_leaves_the_deadline_timer_running() {
    use std::task::{Context, Waker};
    let hung = Hung::default();
    let o = Observer::builder().sink(hung.clone()).build();
    emit_run(&o, 1);
    hung.wait_until_entered();
    emit_run(&o, 1);
    let short = FlushOptions {
        timeout: Duration::from_millis(20),
        terminal: false,
    };
    let waker = Waker::from(Arc::new(PanickingWake));
    let mut broken = Box::pin(o.flush(short));
    assert!(
        broken
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    // Its deadline passes: the (process-wide) timer wakes it, and the waker panics.
    std::thread::sleep(Duration::from_millis(100));
    // A later async flush behind the hung sink is still woken at its deadline. On a thread,
    // so a timer that died fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let o2 = o.clone();
    std::thread::spawn(move || tx.send(block_on(o2.flush(short)).status));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)),
        Ok(FlushStatus::Deadline),
        "the deadline timer stopped waking flushes"
    );
    hung.release();
    drop(broken);
    answered(&o);
}
