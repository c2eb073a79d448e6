#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/, cargo-fuzz and libFuzzer on nightly Rust) one
# after another, SECONDS each (default 600), and prints the executions of each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# One target at a time in one process (libFuzzer's default: no -jobs/-workers),
# so a run takes one core. The committed seeds (fuzz/corpus/<target>/) are read,
# never written: what a run discovers goes to a working corpus outside the tree
# ($FUZZ_WORK, by default ~/.cache/nft-gate/fuzz), which the next run starts
# from, with the crash inputs under $FUZZ_WORK/artifacts/<target>/. A crash
# found is fixed in the code and its input committed under
# fuzz/regressions/<target>/, which the stable tests replay
# (shared/tests/fuzz_corpus.rs, gate-agent/tests/fuzz_corpus.rs).
#
# Builds use AddressSanitizer and debug assertions (integer overflow panics).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
cache=${XDG_CACHE_HOME:-$HOME/.cache}/nft-gate
work=${FUZZ_WORK:-$cache/fuzz}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$cache/fuzz-target}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  # Every target but the seed writer (a plain binary of the same package).
  mapfile -t targets < <(cargo +nightly fuzz list | grep -vx seed_corpus)
fi

cargo +nightly fuzz build -a --target-dir "$CARGO_TARGET_DIR" >&2
# Run copies, so a rebuild during a long run does not change the binaries
# under it.
bins="$work/bin"
mkdir -p "$bins"
for target in "${targets[@]}"; do
  cp "$CARGO_TARGET_DIR/$(rustc +nightly -vV | sed -n 's/^host: //p')/release/$target" "$bins/"
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

# Flags per target: QR frames are large inputs and slow ones.
extra_flags() {
  case "$1" in
    qr_image) echo "-max_len=70000 -timeout=30" ;;
    *) echo "-timeout=10" ;;
  esac
}

mkdir -p "$work/logs"
summary=()
status=0
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
  log="$work/logs/$target.log"
  echo "==> $target for ${seconds}s (log: $log)" >&2
  started=$(date +%s)
  inputs=("$work/corpus/$target" "fuzz/corpus/$target")
  [ -d "fuzz/regressions/$target" ] && inputs+=("fuzz/regressions/$target")
  # shellcheck disable=SC2046
  if "$bins/$target" "${inputs[@]}" \
      -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$target/" $(extra_flags "$target") \
      >"$log" 2>&1; then
    outcome=ok
  else
    outcome="CRASH (see $log and $work/artifacts/$target/)"
    status=1
  fi
  elapsed=$(( $(date +%s) - started ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  # libFuzzer's last status line: coverage and the corpus it kept.
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
  summary+=("$(printf '%-18s %6ss %12s %8s %12s  %s' \
    "$target" "$elapsed" "${runs:-?}" "${cov:-?}" "${corp:-?}" "$outcome")")
done

echo
printf '%-18s %7s %12s %8s %12s  %s\n' target time executions coverage corpus outcome
printf '%s\n' "${summary[@]}" | tee "$work/summary.txt"
exit $status
