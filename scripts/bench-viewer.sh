#!/usr/bin/env bash
# The viewer benchmark: builds the release app, writes a 300-slice 512×512 synthetic CT, and
# prints Rust→webview throughput, time to the first rendered slice and scroll frame times
# measured in the real app under Xvfb (software WebGL). Not part of the test command.
#   bash scripts/bench-viewer.sh
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
bench() {
  DOKUEI_APP="$CARGO_TARGET_DIR/release/dokuei-app" DOKUEI_BENCH_STUDY="$study/series" \
    xvfb-run -a -s "-screen 0 1280x1024x24" node tests/e2e/bench-viewer.mjs
}
# DOKUEI_RENDERING (crates/review/src/system.rs): auto (the default) is, without a GPU render
# node, WebKitGTK's DMA-BUF renderer off and Cornerstone3D on the CPU; webgl is WebKitGTK's
# defaults. Each run also times the other Cornerstone3D path and checks whether the
# screen shows a WebGL canvas's last draw.
say "DOKUEI_RENDERING=auto (this machine: software, no render node)"
DOKUEI_RENDERING=auto bench
say "DOKUEI_RENDERING=webgl (WebKitGTK's defaults, Cornerstone3D on WebGL)"
DOKUEI_RENDERING=webgl bench
# Measured in earlier runs and left out: WEBKIT_DISABLE_COMPOSITING_MODE=1 behaved as the
# DMA-BUF switch, and GTK_IM_MODULE=gtk-im-context-simple did not bring WebDriver screenshots
# back (README, "Rendering without a GPU").
say "DOKUEI_RENDERING=webgl WEBKIT_DISABLE_DMABUF_RENDERER=1 (WebGL without DMA-BUF)"
DOKUEI_RENDERING=webgl WEBKIT_DISABLE_DMABUF_RENDERER=1 bench
say "render nodes: $(ls /dev/dri/renderD* 2>/dev/null | tr '\n' ' ' || true)(none listed means software rendering)"
