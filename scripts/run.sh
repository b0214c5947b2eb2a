#!/usr/bin/env bash
# Sets everything up (idempotently), builds Dokuei and opens it.
#   bash scripts/run.sh
# Needs a display; on a headless machine run it inside Xvfb: xvfb-run -a bash scripts/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh

bash scripts/setup.sh
say "building the app (the first build takes a few minutes)"
app=$(build_app)
cargo build --quiet -p dokuei
bash scripts/sample-studies.sh
[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || die "no display: run it inside Xvfb with 'xvfb-run -a bash scripts/run.sh'"
say "starting $app"
exec "$app" "$@"
