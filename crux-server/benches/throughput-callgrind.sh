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
#
# Steady state: crux-server/benches/throughput-callgrind.sh --steady [N] [W]   (defaults
# 2000, 20000). N and 3N requests never fill the Memory sink's 100 000 records or the
# ended-run ring, so the default mode counts a server that is still filling them (no record
# freed, no run forgotten), which a server under load is not. `--steady` serves each variant
# once, warms it with W requests run uninstrumented (`--instr-atstart=no`: W is past the
# sink's bound and the ring's size), then turns counting on (`callgrind_control -i on`,
# `-z`), counts N requests and dumps (`-d`): instructions of N requests at steady state,
# start-up and shutdown excluded. CRUX_CALLGRIND_KEEP=DIR keeps each variant's dump there
# (`DIR/VARIANT.out`), for `callgrind_annotate --inclusive=yes`.
#
# CRUX_THROUGHPUT_BIN=PATH counts that bench executable instead of building one: a copy
# kept from another commit, to compare two builds on the same machine in turn.
set -euo pipefail
STEADY=""
if [[ "${1:-}" == "--steady" ]]; then
    STEADY=1
    shift
fi
if [[ -n "$STEADY" ]]; then
    N="${1:-2000}"
    WARM="${2:-20000}"
else
    N="${1:-300}"
fi
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never
if [[ -n "${CRUX_THROUGHPUT_BIN:-}" ]]; then
    BIN="$CRUX_THROUGHPUT_BIN"
    [[ -x "$BIN" ]] || { echo "CRUX_THROUGHPUT_BIN=$BIN is not an executable" >&2; exit 1; }
else
    BIN="$(cargo bench -p crux-server --bench throughput --no-run --message-format=json 2>/dev/null |
        grep '"kind":\["bench"\]' | grep '"name":"throughput"' |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
    [[ -x "$BIN" ]] || { echo "build failed: cargo bench -p crux-server --bench throughput --no-run" >&2; exit 1; }
fi
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
# Serves VARIANT under callgrind (VALGRIND-OPTIONs added), its stdin held open on fd 3 until
# the caller closes it; sets the caller's `pid` and `addr` (empty when the server never said
# where it serves).
serve() { # VARIANT [VALGRIND-OPTION...]
    local variant="$1" fifo="$OUT/stdin" log="$OUT/serve.log"
    shift
    rm -f "$fifo" "$OUT"/callgrind.out.* "$OUT"/*.log
    mkfifo "$fifo"
    valgrind --tool=callgrind "$@" --callgrind-out-file="$OUT/callgrind.out.%p" \
        "$BIN" --serve "$variant" <"$fifo" >"$log" 2>"$OUT/valgrind.log" &
    pid=$!
    exec 3>"$fifo" # holds the server's stdin open until the caller closes it
    addr=""
    for _ in $(seq 1 600); do
        addr="$(sed -n 's/^serving //p' "$log")"
        [[ -n "$addr" ]] && break
        kill -0 "$pid" 2>/dev/null || break # it exited without serving
        sleep 0.1
    done
}

count() { # VARIANT REQUESTS → total instructions of the server process
    local variant="$1" requests="$2" pid addr
    serve "$variant"
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

# `--steady`: one server per variant, warmed uninstrumented with WARM requests, then N
# requests counted between a zeroing and a dump. Prints the instructions per request.
steady() { # VARIANT → instructions per request at steady state
    local variant="$1" pid addr
    serve "$variant" --instr-atstart=no
    local step=""
    if [[ -z "$addr" ]]; then
        kill "$pid" 2>/dev/null
        step="the server did not start"
    elif ! "$BIN" --requests "$addr" 1 "$WARM" >"$OUT/load.log" 2>&1; then
        step="the warm-up's load generator failed"
    elif ! { callgrind_control -i on "$pid" && callgrind_control -z "$pid"; } >>"$OUT/valgrind.log" 2>&1; then
        step="callgrind_control could not start counting"
    elif ! "$BIN" --requests "$addr" 1 "$N" >>"$OUT/load.log" 2>&1; then
        step="the load generator failed"
    elif ! callgrind_control -d "$pid" >>"$OUT/valgrind.log" 2>&1; then
        step="callgrind_control could not dump"
    fi
    exec 3>&-
    local status=0
    wait "$pid" || status=$?
    if [[ -n "$step" ]]; then
        fail "$variant" "$N" "$step"
        return 1
    fi
    if ((status != 0)); then
        fail "$variant" "$N" "the server exited with status $status"
        return 1
    fi
    # The dump asked for is part 1 (`callgrind.out.PID.1`); the file without a part number
    # is shutdown's.
    local dump
    dump="$(ls "$OUT"/callgrind.out.*.1 2>/dev/null | head -n 1)"
    local total
    total="$(awk '/^summary:/ { s += $2; n++ } END { if (n) print s }' "${dump:-/dev/null}")"
    if [[ -z "$total" ]]; then
        fail "$variant" "$N" "callgrind wrote no count"
        return 1
    fi
    if [[ -n "${CRUX_CALLGRIND_KEEP:-}" ]]; then
        mkdir -p "$CRUX_CALLGRIND_KEEP"
        cp "$dump" "$CRUX_CALLGRIND_KEEP/$variant.out"
    fi
    awk -v t="$total" -v n="$N" 'BEGIN { printf "%.0f", t / n }'
}

# CRUX_THROUGHPUT_VARIANTS (as for throughput.sh): a comma-separated subset.
VARIANTS="${CRUX_THROUGHPUT_VARIANTS:-memory,jsonl,disabled,bare}"
if [[ -n "$STEADY" ]]; then
    echo "instructions per request at steady state (callgrind, whole server process;" \
        "$WARM requests uncounted, then N=$N counted)"
else
    echo "instructions per request (callgrind, whole server process; N=$N and 3N requests)"
fi
declare -A per
for variant in ${VARIANTS//,/ }; do
    if [[ -n "$STEADY" ]]; then
        per[$variant]="$(steady "$variant")" || exit 1
    else
        small="$(count "$variant" "$N")" || exit 1
        large="$(count "$variant" "$((3 * N))")" || exit 1
        per[$variant]="$(awk -v a="$small" -v b="$large" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / (2 * n) }')"
    fi
    printf '  %-9s %12s\n' "$variant" "${per[$variant]}"
done
[[ -n "${per[memory]:-}" && -n "${per[jsonl]:-}" && -n "${per[disabled]:-}" && -n "${per[bare]:-}" ]] ||
    exit 0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ratios: memory/disabled $(ratio "${per[memory]}" "${per[disabled]}")," \
    "jsonl/disabled $(ratio "${per[jsonl]}" "${per[disabled]}")," \
    "disabled/bare $(ratio "${per[disabled]}" "${per[bare]}")," \
    "memory/bare $(ratio "${per[memory]}" "${per[bare]}")"
