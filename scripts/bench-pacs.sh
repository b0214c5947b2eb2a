#!/usr/bin/env bash
# The PACS benchmark. Not part of the test command.
#  1. scripts/reference/pacs_bench.py: retrieve a 300-slice 512×512 CT, uncompressed and JPEG-LS,
#     from a real Orthanc on loopback with Dokuei (WADO-RS, C-GET) against DCMTK getscu and
#     dicomweb-client, and receive it by C-STORE from dcmsend into Dokuei's SCP against DCMTK
#     storescp (times, MB/s, ratios).
#  2. tests/e2e/bench-pacs.mjs: in the release app, Retrieve click → first image on screen for a
#     300-slice 512×512 CT, by WADO-RS and by C-GET.
#   bash scripts/bench-pacs.sh [--rounds N]
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
mkdir -p tests/output
.dokuei/venv/bin/python scripts/reference/pacs_bench.py --dokuei "$CARGO_TARGET_DIR/release/dokuei" \
  --json tests/output/bench-pacs.json "$@"
study=${TMPDIR:-/tmp}/dokuei-bench-viewer-300x512
if [ ! -f "$study/ground_truth.json" ]; then
  say "writing the benchmark study (300 slices of 512×512)"
  python3 sample-studies/generate.py "$CARGO_TARGET_DIR/release/dokuei" "$study" --seed 7 --slices 300 --size 512 --nodules 6
fi
DOKUEI_APP="$CARGO_TARGET_DIR/release/dokuei-app" DOKUEI_BENCH_STUDY="$study/series" \
  xvfb-run -a -s "-screen 0 1280x1024x24" node tests/e2e/bench-pacs.mjs
