#!/usr/bin/env bash
# Instructions per `tracing` span of crux-otel's `tracing_span` bench cases, thread by
# thread (the caller's, then the crux delivery thread's), counted by callgrind, which the
# machine's load does not change. Each case runs twice, with 20 and 60 samples of 1 000
# spans; (T60 - T20) / 40 000 cancels start-up, divan's calibration and shutdown.
#
# Usage: crux-otel/benches/tracing-span-callgrind.sh [CASE...]
#   (default: registry_only noop_layer crux_layer_outside_crux crux_layer_inside_span
#    crux_layer_inside_span_no_fields tracing_opentelemetry). Needs valgrind.
# CRUX_OTEL_BENCH_BIN=PATH counts that bench executable instead of building one (a copy
# kept from another commit); CRUX_CALLGRIND_KEEP=DIR keeps the dumps
# (DIR/CASE-N.out-01 the caller, -02 the delivery thread) for `callgrind_annotate`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never
if [[ -n "${CRUX_OTEL_BENCH_BIN:-}" ]]; then
    BIN="$CRUX_OTEL_BENCH_BIN"
else
    BIN="$(CARGO_PROFILE_BENCH_DEBUG=line-tables-only cargo bench -p crux-otel --bench otel \
        --no-run --message-format=json 2>/dev/null |
        grep '"kind":\["bench"\]' | grep '"name":"otel"' |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
fi
[[ -x "$BIN" ]] || { echo "no bench executable (cargo bench -p crux-otel --bench otel --no-run)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
OUT="${CRUX_CALLGRIND_KEEP:-$(mktemp -d)}"
[[ -n "${CRUX_CALLGRIND_KEEP:-}" ]] || trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT"
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(registry_only noop_layer crux_layer_outside_crux
    crux_layer_inside_span crux_layer_inside_span_no_fields tracing_opentelemetry)
total() { # DUMP: the dump's instruction total, empty when there is no such dump
    if [[ -f "$1" ]]; then
        callgrind_annotate "$1" 2>/dev/null | grep -m1 "PROGRAM TOTALS" |
            awk '{gsub(",", "", $1); print $1}'
    fi
    return 0 # grep -m1 closes the pipe early: callgrind_annotate's SIGPIPE is no failure
}
echo "instructions per span (callgrind; (T60 - T20) / 40000 per thread)"
for c in "${cases[@]}"; do
    for n in 20 60; do
        valgrind --tool=callgrind --separate-threads=yes --dump-instr=no \
            --callgrind-out-file="$OUT/$c-$n.out" "$BIN" --bench "tracing_span::$c\$" \
            --sample-count "$n" --sample-size 1000 >/dev/null 2>&1 ||
            { echo "case $c failed under valgrind" >&2; exit 1; }
    done
    line="$(printf '  %-36s' "$c")"
    for t in 01 02; do
        a="$(total "$OUT/$c-20.out-$t")"
        b="$(total "$OUT/$c-60.out-$t")"
        if [[ -n "$a" && -n "$b" ]]; then
            who="delivery thread"
            [[ $t == 01 ]] && who=caller
            line="$line  $who $(((b - a) / 40000))"
        fi
    done
    echo "$line"
done
