#!/usr/bin/env bash
# The PACS benchmark (scripts/reference/pacs_bench.py): retrieve a 300-slice 512×512 CT,
# uncompressed and JPEG-LS, from a real Orthanc on loopback with Dokuei (WADO-RS, C-GET) against
# DCMTK getscu and dicomweb-client, and receive it by C-STORE from dcmsend into Dokuei's SCP
# against DCMTK storescp. Not part of the test command.
#   bash scripts/bench-pacs.sh [--slices N] [--size N] [--rounds N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh
claim_target_dir
bash scripts/setup.sh --test
say "building the release CLI"
cargo build --release -p dokuei
mkdir -p tests/output
.dokuei/venv/bin/python scripts/reference/pacs_bench.py --dokuei "$CARGO_TARGET_DIR/release/dokuei" \
  --json tests/output/bench-pacs.json "$@"
