#!/usr/bin/env bash
# The de-identification benchmark. Not part of the test command.
#   scripts/reference/deid_peers.py bench: de-identify a 300-slice 512×512 CT with Dokuei
#   (`dokuei deid`, release build), dicognito (PyPI, its command line) and Orthanc's
#   /studies/{id}/anonymize (Debian, on loopback; server side only), best of N rounds; prints
#   times and ratios (target: Dokuei ≥ 10× the faster peer).
#   bash scripts/bench-deid.sh [--rounds N] [--slices N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh
claim_target_dir
bash scripts/setup.sh --test
say "building the release CLI"
cargo build --release -p dokuei
mkdir -p tests/output
.dokuei/venv/bin/python scripts/reference/deid_peers.py bench --dokuei "$CARGO_TARGET_DIR/release/dokuei" \
  --json tests/output/bench-deid.json "$@"
