#!/usr/bin/env bash
# Throughput of a crux server on loopback (crux-server/benches/throughput/main.rs): an
# action making two `run_action` hops, crux observing (Memory, JSON Lines) vs the observer
# disabled vs bare axum, the load generator in a second process. Prints each run and the
# medians with their spread. Load-dependent: compare the ratios, within one run.
#
# Usage: crux-server/benches/throughput.sh [RUNS] [SECONDS] [CONNECTIONS]   (5 3 32)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo bench -p crux-server --bench throughput -- "$@"
