#!/usr/bin/env bash
# Writes the sample studies (synthetic phantoms, see sample-studies/PROVENANCE.md) into
# sample-studies/generated/, skipping those already there. Needs the dokuei binary (built by
# the run and test commands).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh
dokuei=${1:-$CARGO_TARGET_DIR/debug/dokuei}
out=sample-studies/generated
make_study() { # name seed nodules
  if [ -f "$out/$1/ground_truth.json" ]; then
    say "sample study $1: already in $out/$1"
  else
    say "sample study $1: generating"
    python3 sample-studies/generate.py "$dokuei" "$out/$1" --seed "$2" --slices 200 --size 256 --nodules "$3" \
      --description "Synthetic chest CT ($1)"
  fi
}
make_study chest-ct-nodules 1 6
make_study chest-ct-clean 2 0
make_radiograph() { # name seed opacities
  if [ -f "$out/$1/ground_truth.json" ]; then
    say "sample study $1: already in $out/$1"
  else
    say "sample study $1: generating"
    python3 sample-studies/generate.py "$dokuei" "$out/$1" --radiograph --seed "$2" --size 512 --opacities "$3" \
      --description "Synthetic chest radiograph PA ($1)"
  fi
}
make_radiograph chest-xr-opacity 11 1
make_radiograph chest-xr-clean 12 0
