#!/usr/bin/env bash
# The issue-15 comparison in one command: builds the three bench binaries once (release,
# `[profile.bench]`), then
#   1. runs the span, envelope and `run_action` comparisons RUNS times (default 5),
#      printing each run's divan medians and the ratios against the baselines, then once
#      the span loops with every thread's CPU time per span (`span_threads`);
#   2. counts instructions per operation with callgrind (unless CRUX_COMPARE_NO_CALLGRIND
#      is set): each case runs twice with different sample counts and the difference is
#      divided by the operations it added, so start-up and divan's own work cancel out.
#      Instruction counts do not depend on the machine's load; the timings do.
#
# Usage: benches/compare.sh [RUNS]          (from anywhere in the workspace; RUNS=0: only
#                                            the instruction counts)
#
# CRUX_COMPARE_BUSY=1 keeps one core busy during the timed runs: a second process (a
# shell loop that never sleeps) runs from before the first run to after the last, so on
# a 2-core machine the bench and its background threads (crux's delivery worker,
# fastrace's collector) share the other core. The issue-15 span goal must hold then too.
# Needs valgrind for part 2. Not run in CI.
set -euo pipefail
shopt -s inherit_errexit

RUNS="${1:-5}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never
# Line tables only: callgrind can name inlined code; the generated code is unchanged.
export CARGO_PROFILE_BENCH_DEBUG=line-tables-only
export CRUX_BENCH_SKIP_THROUGHPUT=1

executable() { # NAME cargo-bench-args... → the path of bench NAME's binary
    local name="$1"
    shift
    cargo bench "$@" --no-run --message-format=json 2>/dev/null |
        grep "\"kind\":\[\"bench\"\]" | grep "\"name\":\"$name\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}
echo "building (release, [profile.bench]) ..." >&2
OVERHEAD="$(executable overhead -p crux-runtime --bench overhead)"
SPAN_THREADS="$(executable span_threads -p crux-runtime --bench span_threads)"
RUN_ACTION="$(executable run_action --bench run_action)"
[[ -x "$OVERHEAD" && -x "$SPAN_THREADS" && -x "$RUN_ACTION" ]] || {
    echo "build failed: run cargo bench --no-run to see why" >&2
    exit 1
}

# divan prints `name  fastest │ slowest │ median │ mean │ samples │ iters`; prints
# `name median_ns` for each leaf row.
medians() {
    awk -F'│' '
        function ns(s,   v, u) {
            gsub(/^[ \t]+|[ \t]+$/, "", s); split(s, p, " "); v = p[1]; u = p[2];
            if (u == "ps") return v / 1000; if (u == "ns") return v;
            if (u == "µs" || u == "us") return v * 1000; if (u == "ms") return v * 1e6;
            if (u == "s") return v * 1e9; return -1
        }
        NF >= 6 {
            name = $1; gsub(/^[ │├╰─\t]+/, "", name); split(name, w, " "); 
            if (ns($3) > 0) printf "%s %.3f\n", w[1], ns($3)
        }'
}
pick() { awk -v k="$1" '$1 == k { print $2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

BUSY_PID=
stop_busy() {
    [[ -z "$BUSY_PID" ]] || kill "$BUSY_PID" 2>/dev/null || true
    BUSY_PID=
}
if [[ "${CRUX_COMPARE_BUSY:-}" == 1 ]] && ((RUNS > 0)); then
    bash -c 'while :; do :; done' &
    BUSY_PID=$!
    trap stop_busy EXIT
    sleep 1
    echo "busy: process $BUSY_PID (a shell loop) keeps one core busy during the timed runs"
fi
echo "== wall clock, $RUNS runs (load average now: $(cut -d' ' -f1-3 /proc/loadavg)) =="
for run in $(seq 1 "$RUNS"); do
    spans="$("$OVERHEAD" --bench "^overhead::span::" --sample-count 200 --sample-size 100 2>/dev/null | medians)"
    env="$("$OVERHEAD" --bench "^overhead::envelope::" --sample-count 200 --sample-size 100 2>/dev/null | medians)"
    hops="$("$RUN_ACTION" --bench "_run_action$" --sample-count 100 2>/dev/null | medians)"
    crux="$(pick crux <<<"$spans")"
    tracing="$(pick tracing_instrument <<<"$spans")"
    fastrace="$(pick fastrace_trace <<<"$spans")"
    rt="$(pick crux_encode_decode <<<"$env")"
    serde="$(pick serde_json_round_trip <<<"$env")"
    hop="$(pick crux_run_action <<<"$hops")"
    raw="$(pick raw_run_action <<<"$hops")"
    printf 'run %d (load %s)\n' "$run" "$(cut -d' ' -f1 /proc/loadavg)"
    # The span benches time 100 spans per iteration, run_action 50 hops per sample.
    printf '  span start+end   crux %8.1f ns  tracing %8.1f ns  fastrace %8.1f ns  crux/tracing %s  crux/fastrace %s\n' \
        "$(ratio "$crux" 100)" "$(ratio "$tracing" 100)" "$(ratio "$fastrace" 100)" \
        "$(ratio "$crux" "$tracing")" "$(ratio "$crux" "$fastrace")"
    printf '  envelope trip    crux %8.1f ns  serde   %8.1f ns  ratio %s\n' \
        "$rt" "$serde" "$(ratio "$rt" "$serde")"
    printf '  run_action hop   crux %8.1f ns  raw     %8.1f ns  ratio %s\n' \
        "$(ratio "$hop" 50)" "$(ratio "$raw" 50)" "$(ratio "$hop" "$raw")"
done

if ((RUNS > 0)); then
    # The bench thread's timing hides the CPU the process's other threads spend on its
    # spans (crux's delivery worker, fastrace's collector), which competes for its core
    # when the other core is busy: every thread's CPU time per span, the same loops.
    echo "== CPU time per span, every thread (load average now: $(cut -d' ' -f1-3 /proc/loadavg)) =="
    "$SPAN_THREADS" 20000
fi
stop_busy

[[ -n "${CRUX_COMPARE_NO_CALLGRIND:-}" ]] && exit 0
command -v valgrind >/dev/null || {
    echo "valgrind not found: no instruction counts" >&2
    exit 0
}

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
# per_op LABEL OPS_PER_ITERATION BINARY BENCH SAMPLE_SIZE: one callgrind run of 40 samples.
# The caller's count is the inclusive cost of divan's sample loop (the benchmark's own
# thread: what the timings measure); "other threads" is everything the run's other
# threads executed (delivery worker, collectors), divided by the same operations: it
# includes their idle polling while divan starts up, and the records still queued when a
# bench ends are delivered after its samples, before the next bench starts (`overhead`
# waits for its queue to empty at exit), so it is approximate. Fair
# scheduling: without it valgrind's one lock starves the worker, which then takes the
# queue in a few huge passes (the count of "other threads" depends on how large they are).
per_op() {
    local label="$1" per_iter="$2" bin="$3" bench="$4" size="$5" samples=40
    rm -f "$SCRATCH"/cg.*
    valgrind --tool=callgrind --separate-threads=yes --fair-sched=yes --callgrind-out-file="$SCRATCH/cg.%p" \
        "$bin" --bench "^$bench\$" --sample-count "$samples" --sample-size "$size" \
        >/dev/null 2>&1
    local caller=0 other=0 f n
    for f in "$SCRATCH"/cg.*; do
        if [[ "$f" == *-01 ]]; then
            caller="$(callgrind_annotate --inclusive=yes "$f" 2>/dev/null |
                awk '/thread_pool.rs:divan::thread_pool::TaskShared<F>::new::call \[/ && !n++ {
                        gsub(",", "", $1); print $1 }')"
        else
            n="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f")"
            other=$((other + ${n:-0}))
        fi
    done
    local ops=$((samples * size * per_iter))
    printf '  %-34s %9d caller  %9d other threads\n' "$label" \
        $((${caller:-0} / ops)) $((other / ops))
}
echo "== callgrind: instructions per operation =="
per_op "span start+end (crux)" 100 "$OVERHEAD" overhead::span::crux 20
per_op "span (#[tracing::instrument])" 100 "$OVERHEAD" overhead::span::tracing_instrument 20
per_op "span (fastrace #[trace])" 100 "$OVERHEAD" overhead::span::fastrace_trace 20
per_op "envelope round trip (crux)" 1 "$OVERHEAD" overhead::envelope::crux_encode_decode 100
per_op "envelope round trip (serde_json)" 1 "$OVERHEAD" overhead::envelope::serde_json_round_trip 100
per_op "run_action hop (ctx.crux)" 50 "$RUN_ACTION" run_action::crux_run_action 1
per_op "run_action hop (raw ctx)" 50 "$RUN_ACTION" run_action::raw_run_action 1
