#!/usr/bin/env bash
# Compile cost of the crux attributes: 200 annotated handlers against the same 200 handlers
# without attributes, in a scratch crate. Touches one file and times the incremental
# rebuild (`cargo build`, dev profile), RUNS times per variant; prints the medians.
#
# With CRUX_COMPILE_COST_CALLGRIND=1 it also counts the instructions of the rebuild's rustc
# (one more touched rebuild per variant, rustc under valgrind's callgrind through a
# RUSTC_WRAPPER): unlike the times, the count does not depend on the machine's load. The
# wrapper is set for every build (so switching the count on changes no fingerprint): each
# timed rustc starts through one more `bash` exec, which cancels out in "added" but makes
# the plain and annotated seconds not strictly comparable with figures from before it.
#
# CRUX_COMPILE_COST_REGISTER=1: the annotated crate also registers its 200 handlers in a
# `Deployment` (as an app does, in its lib.rs): `Function::path()` and the registry's
# entry are generic, compiled where a function is registered, so this counts them too.
#
# Not run in CI. Usage: crux-macros/benches/compile_cost.sh [RUNS]   (default 7)
set -euo pipefail
shopt -s inherit_errexit

RUNS="${1:-7}"
HANDLERS=200
FILES=10
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SCRATCH="$ROOT/target/compile-cost"
export CARGO_TARGET_DIR="$SCRATCH/target"
export CARGO_TERM_COLOR=never

# CRUX_COMPILE_COST_OPT_MACROS=1: both crates build their proc macros optimized, as the
# README recommends (`[profile.dev.package.*] opt-level = 3` for crux-macros and syn).
opt_macros() {
    [[ "${CRUX_COMPILE_COST_OPT_MACROS:-}" == 1 ]] || return 0
    local package
    for package in crux-macros syn quote proc-macro2; do
        printf '[profile.dev.package.%s]\nopt-level = 3\n' "$package"
    done
}

generate() { # variant(annotated|plain) dir
    local variant="$1" dir="$2"
    mkdir -p "$dir/src"
    cat > "$dir/Cargo.toml" <<TOML
[package]
name = "cost_$variant"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
crux = { path = "$ROOT" }
serde = { version = "1", features = ["derive"] }

[workspace]
$(opt_macros)
TOML
    {
        echo "#![allow(dead_code, unused_variables)]"
        echo "use crux::prelude::*;"
        echo "#[derive(Serialize, Deserialize)] pub struct Args { pub id: u64, pub text: String }"
        for f in $(seq 0 $((FILES - 1))); do echo "pub mod m$f;"; done
        if [[ "$variant" == annotated && "${CRUX_COMPILE_COST_REGISTER:-}" == 1 ]]; then
            echo "pub fn deployment() -> crux::local::Deployment {"
            echo "    crux::local::Deployment::builder()"
            for f in $(seq 0 $((FILES - 1))); do
                for i in $(seq 0 $((HANDLERS / FILES - 1))); do echo "        .function(m$f::h$i)"; done
            done
            echo "        .build()"
            echo "}"
        fi
    } > "$dir/src/lib.rs"
    local per_file=$((HANDLERS / FILES))
    for f in $(seq 0 $((FILES - 1))); do
        {
            echo "use crux::prelude::*;"
            echo "use crate::Args;"
            for i in $(seq 0 $((per_file - 1))); do
                local attr=""
                case "$variant:$((i % 3))" in
                    annotated:0) attr="#[crux::action(name = \"handler $f $i\", root = \"agent.run\", attributes(index = $i))]" ;;
                    annotated:1) attr="#[crux::query]" ;;
                    annotated:2) attr="#[crux::internal_mutation(path = \"m$f:h$i\")]" ;;
                esac
                local ctx
                case $((i % 3)) in 0) ctx=ActionCtx ;; 1) ctx=QueryCtx ;; 2) ctx=MutationCtx ;; esac
                cat <<RS
$attr
pub async fn h$i(ctx: &$ctx, args: Args) -> crux::Result<u64> {
    let base = args.id.wrapping_mul($i);
    let len = args.text.len() as u64;
    let mut total = base;
    for step in 0..len { total = total.wrapping_add(step); }
    if total == u64::MAX { return Err(crux::Error::msg("overflow")); }
    let label = format!("{}-{}", args.text, total);
    Ok(total + label.len() as u64)
}
RS
            done
        } > "$dir/src/m$f.rs"
    done
}

if [[ "${CRUX_COMPILE_COST_CALLGRIND:-}" == 1 ]] && ! command -v valgrind >/dev/null; then
    echo "compile_cost: CRUX_COMPILE_COST_CALLGRIND=1 needs valgrind" >&2
    exit 1
fi

# A RUSTC_WRAPPER that runs the scratch crate's own rustc under callgrind when
# CRUX_CALLGRIND_OUT is set, and every other rustc (and every other build) as it is; set for
# every build, so switching it on does not change cargo's fingerprints.
WRAPPER="$SCRATCH/rustc-wrapper.sh"
mkdir -p "$SCRATCH"
cat > "$WRAPPER" <<'SH'
#!/usr/bin/env bash
rustc="$1"; shift
if [[ -n "${CRUX_CALLGRIND_OUT:-}" && -n "${CARGO_PRIMARY_PACKAGE:-}" ]]; then
    exec valgrind --tool=callgrind -q --callgrind-out-file="$CRUX_CALLGRIND_OUT" "$rustc" "$@"
fi
exec "$rustc" "$@"
SH
chmod +x "$WRAPPER"
export RUSTC_WRAPPER="$WRAPPER"

instructions() { # dir: rustc instructions of one incremental rebuild after touching one file
    local dir="$1" out="$SCRATCH/callgrind.${1##*/}.out"
    rm -f "$out"
    touch "$dir/src/m0.rs"
    (cd "$dir" && CRUX_CALLGRIND_OUT="$out" cargo build -q)
    # No file: the rebuild ran no rustc of the crate under callgrind (an earlier count must
    # not stand in for it).
    [[ -s "$out" ]] || { echo "compile_cost: no callgrind output for $dir" >&2; exit 1; }
    awk '/^totals:/ { print $2 }' "$out"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

measure() { # dir name: the median of the rebuilds (printed with every run's time)
    local dir="$1" name="$2" times
    (cd "$dir" && cargo build -q)          # warm: dependencies and a first full build
    times=$(for _ in $(seq "$RUNS"); do
        touch "$dir/src/m0.rs"
        local start end
        start=$(date +%s.%N)
        (cd "$dir" && cargo build -q)
        end=$(date +%s.%N)
        echo "$end - $start" | bc
    done)
    # The spread goes to stderr, so the caller's $(..) takes the median alone.
    echo "$name runs (s): $(echo $times)" >&2
    echo "$times" | median
}

rm -rf "$SCRATCH/annotated" "$SCRATCH/plain"
generate annotated "$SCRATCH/annotated"
generate plain "$SCRATCH/plain"
plain=$(measure "$SCRATCH/plain" plain)
annotated=$(measure "$SCRATCH/annotated" annotated)
added=$(echo "$annotated - $plain" | bc)
per_fn=$(echo "scale=3; $added * 1000 / $HANDLERS" | bc)
ratio=$(echo "scale=2; $annotated / $plain" | bc)
echo "handlers: $HANDLERS, runs: $RUNS (medians, incremental rebuild after touching one file)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "plain:     ${plain} s"
echo "annotated: ${annotated} s"
echo "added:     ${added} s (${per_fn} ms per handler), ratio ${ratio}x"
if [[ "${CRUX_COMPILE_COST_CALLGRIND:-0}" == 1 ]]; then
    plain_ir=$(instructions "$SCRATCH/plain")
    annotated_ir=$(instructions "$SCRATCH/annotated")
    echo "rustc instructions (callgrind, one incremental rebuild): plain ${plain_ir}," \
        "annotated ${annotated_ir}, added $((annotated_ir - plain_ir))" \
        "($(( (annotated_ir - plain_ir) / HANDLERS )) per handler)"
fi
