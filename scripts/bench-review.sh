#!/usr/bin/env bash
# The review benchmark: builds the release app, writes a 300-slice 512×512 synthetic CT, and
# prints the time from Analyse to the overlays on screen against the engine's own analysis time,
# and decision click → ledger commit times, measured in the real app under Xvfb. Not part of the
# test command.
#   bash scripts/bench-review.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh
claim_target_dir
bash scripts/setup.sh --test
say "building the release CLI and app"
cargo build --release -p dokuei
(cd ui && npm run --silent build)
cargo build --release -p dokuei-app --features custom-protocol
study=${TMPDIR:-/tmp}/dokuei-bench-viewer-300x512
if [ ! -f "$study/ground_truth.json" ]; then
  say "writing the benchmark study (300 slices of 512×512)"
  python3 sample-studies/generate.py "$CARGO_TARGET_DIR/release/dokuei" "$study" --seed 7 --slices 300 --size 512 --nodules 6
fi
# The reference: the same analysis by the command-line tool (no window), three runs.
cli_runs=()
for i in 1 2 3; do
  s=$("$CARGO_TARGET_DIR/release/dokuei" analyse "$study/series" --model models/ct-nodule-demo --threads "$(nproc)" 2>/dev/null \
    | sed -n 's/.* finding(s) in \([0-9.]*\) s.*/\1/p')
  say "dokuei analyse (no window), run $i: $s s"
  cli_runs+=("$s")
done
cli=$(printf '%s\n' "${cli_runs[@]}" | sort -n | sed -n 2p)
DOKUEI_BENCH_CLI_SECONDS="$cli" DOKUEI_APP="$CARGO_TARGET_DIR/release/dokuei-app" DOKUEI_BENCH_STUDY="$study/series" \
  xvfb-run -a -s "-screen 0 1280x1024x24" node tests/e2e/bench-review.mjs
