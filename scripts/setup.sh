#!/usr/bin/env bash
# Installs everything Dokuei needs on Debian 12, from Debian, PyPI, npm and crates.io only.
# Idempotent: each step checks what is there, skips it and says so.
#
#   bash scripts/setup.sh          what running the app needs
#   bash scripts/setup.sh --test   plus what the tests need (Xvfb, WebKitWebDriver, tauri-driver,
#                                  a Python venv with reference tools, end-to-end npm packages)
#
# Debian packages are installed with apt-get: as root directly, otherwise through sudo.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh

for_tests=0
[ "${1:-}" = "--test" ] && for_tests=1

# --- Debian packages -------------------------------------------------------------------------
run_packages=(
  libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev
  libayatana-appindicator3-dev libxdo-dev build-essential pkg-config libssl-dev file cmake
  # The software GL renderer is only a Recommends of WebKitGTK; WebGL2 needs it.
  libgl1-mesa-dri libegl-mesa0
  python3 python3-venv python3-pip unzip
)
# pixelmed-apps + a JRE: PixelMed's DicomSRValidator checks written SRs against TID 1500.
# orthanc + orthanc-dicomweb: a real PACS (DIMSE and DICOMweb) for crates/net's tests, started on
# loopback from a temporary configuration by the tests themselves (its Debian service is not used).
# jing validates the audit messages against PS3.15's RELAX NG schema; rsyslog (with its GnuTLS
# driver) is the audit record repository that receives them over syslog-TLS, started on loopback
# by the tests (its Debian service is not used).
test_packages=(xvfb xauth webkit2gtk-driver imagemagick sqlite3 dcmtk dcm2niix time pixelmed-apps default-jre-headless
  orthanc orthanc-dicomweb jing rsyslog rsyslog-gnutls)

packages=("${run_packages[@]}")
[ $for_tests = 1 ] && packages+=("${test_packages[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "Debian packages: all ${#packages[@]} already installed"
else
  say "Debian packages: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- ONNX Runtime ----------------------------------------------------------------------------
# The library comes out of the onnxruntime wheel on PyPI; its SHA-256 is pinned here so a
# changed or tampered wheel is refused.
ort_version=1.31.1
ort_wheel=onnxruntime-${ort_version}-cp311-cp311-manylinux_2_28_x86_64.whl
ort_wheel_sha256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
ort_dir=.dokuei/onnxruntime
ort_lib=$ort_dir/libonnxruntime.so.$ort_version
if [ -f "$ort_lib" ] && [ -f "$ort_dir/.from-$ort_wheel_sha256" ]; then
  say "ONNX Runtime $ort_version: already in $ort_lib"
else
  say "ONNX Runtime $ort_version: fetching the onnxruntime wheel from PyPI"
  mkdir -p .dokuei/wheels "$ort_dir"
  if ! [ -f ".dokuei/wheels/$ort_wheel" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
      --python-version 3.11 "onnxruntime==$ort_version" -d .dokuei/wheels
  fi
  got=$(sha256sum ".dokuei/wheels/$ort_wheel" | cut -d' ' -f1)
  if [ "$got" != "$ort_wheel_sha256" ]; then
    rm -f ".dokuei/wheels/$ort_wheel"
    die "the onnxruntime wheel's SHA-256 is $got, expected $ort_wheel_sha256; refusing it"
  fi
  unzip -o -j -q ".dokuei/wheels/$ort_wheel" "onnxruntime/capi/libonnxruntime.so.$ort_version" -d "$ort_dir"
  touch "$ort_dir/.from-$ort_wheel_sha256"
  say "ONNX Runtime $ort_version: installed $ort_lib"
fi

# --- npm packages ----------------------------------------------------------------------------
npm_install_locked ui
[ $for_tests = 1 ] && npm_install_locked tests/e2e

if [ $for_tests = 1 ]; then
  # --- Python reference tools and test data ----------------------------------------------------
  bash scripts/testdata.sh

  # --- tauri-driver (WebDriver proxy for the end-to-end tests) -------------------------------
  tauri_driver_version=2.1.0
  if command -v tauri-driver >/dev/null && [ "$(cargo install --list | grep -c "^tauri-driver v$tauri_driver_version:")" = 1 ]; then
    say "tauri-driver $tauri_driver_version: already installed"
  else
    say "tauri-driver $tauri_driver_version: building from crates.io (about a minute)"
    cargo install --quiet tauri-driver --version "$tauri_driver_version" --locked
  fi
fi
say "set-up complete"
