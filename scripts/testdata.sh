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

# Source archives (sdists) whose test data the wheels leave out.
fetch_sdist_data() { # name version subdir-in-archive dest
  local name=$1 version=$2 sub=$3 dest=$4 stamp archive
  stamp="$dest/.from-$name-$version"
  if [ -f "$stamp" ]; then
    say "test data $name $version: already in $dest"
    return
  fi
  say "test data $name $version: unpacking the source archive into $dest"
  mkdir -p .dokuei/sdists
  archive=$(ls .dokuei/sdists/"$name"-"$version".tar.gz .dokuei/sdists/"${name//-/_}"-"$version".tar.gz 2>/dev/null | head -1 || true)
  if [ -z "$archive" ]; then
    python3 -m pip download --quiet --no-deps --no-binary :all: "$name==$version" -d .dokuei/sdists
    archive=$(ls .dokuei/sdists/"$name"-"$version".tar.gz .dokuei/sdists/"${name//-/_}"-"$version".tar.gz 2>/dev/null | head -1 || true)
  fi
  [ -n "$archive" ] || die "the $name $version source archive was not downloaded"
  rm -rf "$dest" "$dest.tmp"
  mkdir -p "$dest.tmp"
  tar -xzf "$archive" -C "$dest.tmp"
  mv "$dest.tmp"/*/"$sub" "$dest"
  rm -rf "$dest.tmp"
  touch "$stamp"
}
# Ultrasound (greyscale and RGB, single and multi-frame cine), burned-in annotations, CT.
fetch_sdist_data deid-data 0.0.20 deid_data/data .dokuei/testdata/deid-data
# The cine loops come zipped: unpacked as a user would have them (zip opening is tested apart).
for z in .dokuei/testdata/deid-data/ultrasounds/*.zip; do
  [ -e "$z" ] || continue
  d="${z%.zip}"
  [ -d "$d" ] || unzip -q -o "$z" -d "$d"
done
# RT Structure Set, Dose and Plan, and a CT slice.
fetch_sdist_data dicompyler-core 0.5.6 tests/testdata .dokuei/testdata/dicompyler

# nibabel's test DICOM files (Siemens mosaic and diffusion, Philips), from its wheel in the venv.
nibabel_dest=.dokuei/testdata/nibabel
if [ -f "$nibabel_dest/.from-venv" ]; then
  say "test data nibabel: already in $nibabel_dest"
else
  say "test data nibabel: copying its test DICOM files into $nibabel_dest"
  rm -rf "$nibabel_dest" && mkdir -p "$nibabel_dest"
  site=$("$venv/bin/python" -c 'import nibabel, os; print(os.path.dirname(nibabel.__file__))')
  find "$site" -path '*tests/data*' \( -name '*.dcm' -o -name '*.dcm.gz' \) | while read -r f; do
    rel=${f#"$site"/}
    out="$nibabel_dest/${rel//\//_}"
    case "$f" in *.gz) gunzip -c "$f" >"${out%.gz}" ;; *) cp "$f" "$out" ;; esac
  done
  touch "$nibabel_dest/.from-venv"
fi

# DICOM SEG (binary, labelmap) and SR TID 1500 written by dcmqi from a CT series of the corpus.
dcmqi_dest=.dokuei/testdata/dcmqi
if [ -f "$dcmqi_dest/.made-by-dcmqi" ]; then
  say "test data dcmqi: already in $dcmqi_dest"
else
  say "test data dcmqi: writing SEG and SR from pydicom's CT5N series"
  rm -rf "$dcmqi_dest"
  "$venv/bin/python" scripts/reference/dcmqi_objects.py \
    .dokuei/testdata/pydicom/dicomdirtests/98892001/CT5N "$dcmqi_dest" >/dev/null
  touch "$dcmqi_dest/.made-by-dcmqi"
fi

# HTJ2K and JPEG XL: corpus images re-encoded losslessly by OpenJPH and libjxl (imagecodecs).
reencoded_dest=.dokuei/testdata/reencoded
if [ -f "$reencoded_dest/.made-by-imagecodecs" ]; then
  say "test data HTJ2K and JPEG XL: already in $reencoded_dest"
else
  say "test data HTJ2K and JPEG XL: re-encoding corpus images with OpenJPH and libjxl"
  rm -rf "$reencoded_dest" .dokuei/testdata/htj2k
  "$venv/bin/python" scripts/reference/reencoded_objects.py .dokuei/testdata "$reencoded_dest" >/dev/null
  touch "$reencoded_dest/.made-by-imagecodecs"
fi
