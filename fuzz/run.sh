#!/usr/bin/env bash
# Builds Dokuei's fuzz targets (no sanitizer: the code under test is safe Rust, so the rate is
# the real one; the malloc limit is dokuei_dicom::testdata::CappedAllocator), seeds them from the real test files,
# minimises the seeds into each target's corpus, runs each target and prints executions, rate and
# corpus size. A crash, hang (over 10 s) or allocation past the cap fails the run, naming the
# input that caused it.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(index_header open_decode decode_jpeg decode_jpegls decode_j2k decode_jpegxl decode_rle decode_deflate dicomdir zip)

if ! command -v cargo-fuzz >/dev/null; then
  say "cargo-fuzz: building from crates.io (about a minute)"
  cargo install --quiet cargo-fuzz --version 0.13.2 --locked
fi
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/dokuei/fuzz-target}
# cargo-fuzz's coverage flags are nightly-only; the stable toolchain accepts them this way.
export RUSTC_BOOTSTRAP=1
# Dokuei's memory cap while fuzzing; each target aborts on any allocation past it + 64 MiB.
export DOKUEI_MAX_DECODE_MB=256

say "fuzz: building ${#targets[@]} target(s) (release, no sanitizer)"
(cd fuzz && cargo fuzz build -O -s none)

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
.dokuei/venv/bin/python fuzz/seeds.py .dokuei/testdata "$seeds/raw" >/dev/null 2>&1

bin_dir=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
printf '%-16s %12s %12s %8s\n' target executions "per second" corpus
total=0
failed=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" fuzz/artifacts/$t
  # Minimised seeds: -merge keeps only the inputs that add coverage.
  if [ -d "$seeds/raw/$t" ]; then
    "$bin_dir/$t" -merge=1 -artifact_prefix="fuzz/artifacts/$t/" "$corpus" "$seeds/raw/$t" >/dev/null 2>&1 || true
  fi
  log=fuzz/artifacts/$t/last-run.log
  set +e
  "$bin_dir/$t" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
  status=$?
  set -e
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  elapsed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  size=$(find "$corpus" -type f | wc -l)
  printf '%-16s %12s %12s %8s\n' "$t" "$execs" "$elapsed" "$size"
  total=$((total + execs))
  if [ $status -ne 0 ]; then
    failed=1
    say "fuzz: $t failed (exit $status): $(grep -E 'ERROR|SUMMARY|panicked|exceeded' "$log" | head -3 | tr '\n' ' ')"
    ls fuzz/artifacts/$t/ | grep -v last-run.log | sed "s|^|  input: fuzz/artifacts/$t/|"
  fi
done
say "fuzz: $total executions in all"
exit $failed
