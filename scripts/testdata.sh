#!/usr/bin/env bash
# Reference tools and real DICOM files for the tests, from PyPI only; nothing here is committed.
#   .dokuei/venv/                      pydicom + numpy + decoders + onnx + onnxruntime (references)
#   .dokuei/testdata/pydicom/          pydicom 3.0.2's test files (from its wheel)
#   .dokuei/testdata/pydicom-data/     pydicom-data 1.0.0's files, without the CC BY-NC-SA CQ500 set
# Idempotent: each part is skipped when its stamp file is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh

venv=.dokuei/venv
reqs=scripts/reference-requirements.txt
want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ -f "$venv/.dokuei-reqs-sha256" ] && [ "$(cat "$venv/.dokuei-reqs-sha256")" = "$want" ]; then
  say "Python reference venv: already in $venv"
else
  say "Python reference venv: creating $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --find-links .dokuei/wheels -r "$reqs"
  echo "$want" >"$venv/.dokuei-reqs-sha256"
fi

fetch_wheel_data() { # name version subdir-in-wheel dest [exclude-pattern]
  local name=$1 version=$2 sub=$3 dest=$4 exclude=${5:-} stamp wheel
  stamp="$dest/.from-$name-$version"
  if [ -f "$stamp" ]; then
    say "test data $name $version: already in $dest"
    return
  fi
  say "test data $name $version: unpacking into $dest"
  mkdir -p .dokuei/wheels
  wheel=$(ls .dokuei/wheels/"${name//-/_}"-"$version"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$name==$version" -d .dokuei/wheels
    wheel=$(ls .dokuei/wheels/"${name//-/_}"-"$version"-*.whl | head -1)
  fi
  rm -rf "$dest" "$dest.tmp"
  mkdir -p "$dest.tmp"
  (cd "$dest.tmp" && unzip -q "$root/$wheel" "$sub/*")
  mv "$dest.tmp/$sub" "$dest"
  rm -rf "$dest.tmp"
  if [ -n "$exclude" ]; then find "$dest" -iname "$exclude" -prune -exec rm -rf {} +; fi
  touch "$stamp"
}
fetch_wheel_data pydicom 3.0.2 pydicom/data/test_files .dokuei/testdata/pydicom
# CQ500 head CTs are CC BY-NC-SA: left out of everything.
fetch_wheel_data pydicom-data 1.0.0 data_store/data .dokuei/testdata/pydicom-data '*CQ500*'
