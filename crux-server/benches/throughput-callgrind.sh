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
# CRUX_THROUGHPUT_VARIANTS=memory,bare runs only those. A variant that fails is named, with
# the step that failed and the end of the server's, the load generator's and valgrind's
# output.
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

# A variant failed: says which, at which step, and the end of what the server wrote.
fail() { # VARIANT REQUESTS WHAT
    echo "throughput-callgrind: variant $1, $2 requests: $3" >&2
    local f
    for f in "$OUT/serve.log" "$OUT/load.log" "$OUT/valgrind.log"; do
        if [[ -s "$f" ]]; then
            echo "--- ${f##*/} (last 20 lines)" >&2
            tail -n 20 "$f" >&2
        fi
    done
    return 1
}

# Runs in a command substitution, where `set -e` does not apply: every step is checked
# here, and a failure is reported (`fail`) instead of ending the script without a word.
count() { # VARIANT REQUESTS → total instructions of the server process
    local variant="$1" requests="$2" fifo="$OUT/stdin" log="$OUT/serve.log"
    rm -f "$fifo" "$OUT"/callgrind.out.* "$OUT"/*.log
    mkfifo "$fifo"
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
        "$BIN" --serve "$variant" <"$fifo" >"$log" 2>"$OUT/valgrind.log" &
    local pid=$!
    exec 3>"$fifo" # holds the server's stdin open until we close it
    local addr=""
    for _ in $(seq 1 600); do
        addr="$(sed -n 's/^serving //p' "$log")"
        [[ -n "$addr" ]] && break
        kill -0 "$pid" 2>/dev/null || break # it exited without serving
        sleep 0.1
    done
    if [[ -z "$addr" ]]; then
        exec 3>&-
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        fail "$variant" "$requests" "the server did not start"
        return 1
    fi
    if ! "$BIN" --requests "$addr" 1 "$requests" >"$OUT/load.log" 2>&1; then
        exec 3>&-
        wait "$pid" 2>/dev/null
        fail "$variant" "$requests" "the load generator failed"
        return 1
    fi
    exec 3>&-
    local status=0
    wait "$pid" || status=$?
    if ((status != 0)); then
        fail "$variant" "$requests" "the server exited with status $status"
        return 1
    fi
    # `summary:` is the whole run's count (`totals:` repeats it in some versions).
    local total
    total="$(cat "$OUT"/callgrind.out.* 2>/dev/null | awk '/^summary:/ { s += $2; n++ } END { if (n) print s }')"
    if [[ -z "$total" ]]; then
        fail "$variant" "$requests" "callgrind wrote no count"
        return 1
    fi
    echo "$total"
}

# CRUX_THROUGHPUT_VARIANTS (as for throughput.sh): a comma-separated subset.
VARIANTS="${CRUX_THROUGHPUT_VARIANTS:-memory,jsonl,disabled,bare}"
echo "instructions per request (callgrind, whole server process; N=$N and 3N requests)"
declare -A per
for variant in ${VARIANTS//,/ }; do
    small="$(count "$variant" "$N")" || exit 1
    large="$(count "$variant" "$((3 * N))")" || exit 1
    per[$variant]="$(awk -v a="$small" -v b="$large" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / (2 * n) }')"
    printf '  %-9s %12s\n' "$variant" "${per[$variant]}"
done
[[ -n "${per[memory]:-}" && -n "${per[jsonl]:-}" && -n "${per[disabled]:-}" && -n "${per[bare]:-}" ]] ||
    exit 0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ratios: memory/disabled $(ratio "${per[memory]}" "${per[disabled]}")," \
    "jsonl/disabled $(ratio "${per[jsonl]}" "${per[disabled]}")," \
    "disabled/bare $(ratio "${per[disabled]}" "${per[bare]}")," \
    "memory/bare $(ratio "${per[memory]}" "${per[bare]}")"
