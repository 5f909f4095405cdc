#!/usr/bin/env bash
# Fuzz every wire decoder for a short, bounded time (default 20 s each, 5 targets: under
# 2 minutes after the build). Exits non-zero when a target crashes; the crashing input is
# left in fuzz/artifacts/TARGET/. Longer run of one target:
#   cargo +nightly fuzz run envelope_text -- -max_total_time=3600
# Usage: .ci/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

SECONDS_PER_TARGET="${1:-20}"
TARGETS=(envelope_text envelope_value carrier headers records)

# cargo-fuzz, installed once into ~/.cargo/bin.
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build
for target in "${TARGETS[@]}"; do
    # Start from the hand-written seeds; the corpus (gitignored) grows across runs.
    mkdir -p "fuzz/corpus/$target"
    cp -n "fuzz/seeds/$target/"* "fuzz/corpus/$target/" 2>/dev/null || true
    if [ "$target" = records ]; then
        cp -n tests/fixtures/stores/*.jsonl "fuzz/corpus/$target/"
    fi
    echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
    cargo +nightly fuzz run "$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
done
