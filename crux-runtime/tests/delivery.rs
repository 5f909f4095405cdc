//! Delivery and bounded flush: hung, failing and slow sinks, overflow accounting, N in =
//! N out, terminal warnings and the JSON Lines sink.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::observe::{Observer, RunOptions};
use crux_runtime::record::{Record, RunStatus, SpanStatus};
use crux_runtime::sink::{JsonLines, Memory, Sink, SinkError};

/// Blocks in `write` until released (a collector that stopped answering).
#[derive(Clone, Default)]
struct Hung {
    release: Arc<(Mutex<bool>, std::sync::Condvar)>,
    entered: Arc<AtomicBool>,
}

impl Hung {
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
    assert!(hung.entered.load(Ordering::SeqCst));
    assert_eq!(
        serde_json::to_value(result).unwrap(),
        serde_json::json!({"status": "deadline", "delivered": 0, "rejected": 0,
                           "remaining": 8, "deadlineExceeded": true})
    );
    let warned = seen.lock().unwrap().clone();
    assert_eq!(warned.len(), 1);
    assert!(
        warned[0].contains("did not fully complete"),
        "{}",
        warned[0]
    );
    assert!(warned[0].contains("status=deadline"));

    // A non-terminal flush against the same hung sink is equally bounded and silent.
    let result = o
        .flush(FlushOptions {
            timeout: Duration::from_millis(50),
            terminal: false,
        })
        .await;
    assert_eq!(result.status, FlushStatus::Deadline);
    assert_eq!(seen.lock().unwrap().len(), 1);

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
    let result = o.flush(FlushOptions::FINAL).await;
    assert_eq!(result.status, FlushStatus::Drained);
    assert_eq!(o.stats().delivered, 8);
}

#[tokio::test]
async fn a_failing_or_panicking_sink_yields_failed_and_counts() {
    for sink in [Box::new(Failing) as Box<dyn Sink>, Box::new(Panicking)] {
        let (seen, hook) = warnings();
        let o = Observer::builder()
            .sink(BoxSink(sink))
            .on_warning(hook)
            .build();
        emit_run(&o, 2);
        let result = o.flush(FlushOptions::FINAL).await;
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

struct BoxSink(Box<dyn Sink>);
impl Sink for BoxSink {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        self.0.write(records)
    }
}

#[tokio::test]
async fn a_slow_sink_drains_within_a_generous_bound_and_not_a_tight_one() {
    let slow = Slow::default();
    let o = Observer::builder().sink(slow.clone()).build();
    emit_run(&o, 10);
    let result = o.flush(FlushOptions::BOUNDARY).await;
    assert_eq!(result.status, FlushStatus::Drained);
    assert_eq!(result.delivered, 22);
    assert_eq!(slow.0.load(Ordering::SeqCst), 22);

    emit_run(&o, 10);
    let started = Instant::now();
    let result = o
        .flush(FlushOptions {
            timeout: Duration::from_millis(5),
            terminal: false,
        })
        .await;
    assert!(started.elapsed() < Duration::from_millis(200));
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
    while !hung.entered.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
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

/// A minimal executor: parks the thread until woken (no tokio timer available).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
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
