#!/usr/bin/env bash
# Instructions per request of each throughput variant (crux-server/benches/throughput),
# counted by callgrind over the whole server process (every thread: tokio workers and the
# crux delivery thread), which the machine's load does not change. The load generator runs
# natively outside callgrind, on one connection (requests one at a time). Each variant is
# served twice, for N and 3N requests; the difference divided by 2N cancels start-up and
# shutdown. A flush that waits for the delivery thread by yielding counts the instructions
# of its waiting loop too: under callgrind threads take turns on one core.
#
# Usage: crux-server/benches/throughput-callgrind.sh [N]   (default 300). Needs valgrind.
set -euo pipefail
N="${1:-300}"
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never
BIN="$(cargo bench -p crux-server --bench throughput --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\]' | grep '"name":"throughput"' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
[[ -x "$BIN" ]] || { echo "build failed: cargo bench -p crux-server --bench throughput --no-run" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

count() { # VARIANT REQUESTS → total instructions of the server process
    local variant="$1" requests="$2" fifo="$OUT/stdin" log="$OUT/serve.log"
    rm -f "$fifo" "$OUT"/callgrind.out.*
    mkfifo "$fifo"
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
        "$BIN" --serve "$variant" <"$fifo" >"$log" 2>"$OUT/valgrind.log" &
    local pid=$!
    exec 3>"$fifo" # holds the server's stdin open until we close it
    local addr=""
    for _ in $(seq 1 600); do
        addr="$(sed -n 's/^serving //p' "$log")"
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || { echo "the server did not start: $(cat "$OUT/valgrind.log")" >&2; exit 1; }
    "$BIN" --requests "$addr" 1 "$requests"
    exec 3>&-
    wait "$pid"
    # `summary:` is the whole run's count (`totals:` repeats it in some versions).
    grep -h '^summary:' "$OUT"/callgrind.out.* | awk '{ s += $2 } END { print s }'
}

echo "instructions per request (callgrind, whole server process; N=$N and 3N requests)"
declare -A per
for variant in memory jsonl disabled bare; do
    small="$(count "$variant" "$N")"
    large="$(count "$variant" "$((3 * N))")"
    per[$variant]="$(awk -v a="$small" -v b="$large" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / (2 * n) }')"
    printf '  %-9s %12s\n' "$variant" "${per[$variant]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ratios: memory/disabled $(ratio "${per[memory]}" "${per[disabled]}")," \
    "jsonl/disabled $(ratio "${per[jsonl]}" "${per[disabled]}")," \
    "disabled/bare $(ratio "${per[disabled]}" "${per[bare]}")," \
    "memory/bare $(ratio "${per[memory]}" "${per[bare]}")"
