#!/usr/bin/env bash
# Fuzz every wire decoder for a short, bounded time (default 20 s each, 5 targets: under
# 2 minutes after the build). Exits non-zero when a target crashes; the crashing input is
# left in fuzz/artifacts/TARGET/. Longer run of one target:
#   cargo +nightly fuzz run envelope_text -- -max_total_time=3600
#   (no nightly toolchain: RUSTC_BOOTSTRAP=1 cargo fuzz run ...)
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

# libFuzzer needs nightly flags (-Zsanitizer): the nightly toolchain where the machine has
# one, else the stable one with RUSTC_BOOTSTRAP=1 (the machine's one toolchain).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
fi

"${FUZZ[@]}" build
for target in "${TARGETS[@]}"; do
    # Start from the hand-written seeds; the corpus (gitignored) grows across runs.
    mkdir -p "fuzz/corpus/$target"
    cp -n "fuzz/seeds/$target/"* "fuzz/corpus/$target/" 2>/dev/null || true
    if [ "$target" = records ]; then
        cp -n tests/fixtures/stores/*.jsonl "fuzz/corpus/$target/"
    fi
    echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
    "${FUZZ[@]}" run "$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
done
