#!/usr/bin/env bash
# Sets everything up (idempotently), builds Dokuei and opens it on the sample chest CT (or on
# the folders and files given).
#   bash scripts/run.sh [STUDY…]
# Needs a display; on a headless machine run it inside Xvfb: xvfb-run -a bash scripts/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh
claim_target_dir

bash scripts/setup.sh
say "building the app (the first build takes a few minutes)"
app=$(build_app)
cargo build --quiet -p dokuei
bash scripts/sample-studies.sh
[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || die "no display: run it inside Xvfb with 'xvfb-run -a bash scripts/run.sh'"
if [ $# -eq 0 ]; then
  set -- "$root/sample-studies/generated/chest-ct-nodules"
fi
say "starting $app on $*"
exec "$app" "$@"
