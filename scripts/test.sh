#!/usr/bin/env bash
# Sets everything up (idempotently) and runs every check and test: formatting, lints, type
# checks, Rust tests, UI unit tests and the end-to-end tests against the real app under Xvfb.
#   bash scripts/test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh
claim_target_dir

logs=tests/output/logs
mkdir -p "$logs"
started=$(date +%s)
step() { say "== $* ($(($(date +%s) - started)) s)"; }

step "set-up"
bash scripts/setup.sh --test

step "cargo fmt --check"
cargo fmt --all -- --check

step "UI: type check, lint, unit tests"
(cd ui && npm run --silent typecheck && npm run --silent lint)
(cd ui && npx vitest run --reporter=default) 2>&1 | tee "$logs/vitest.log"

step "cargo clippy (all targets, warnings denied)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (includes the check that ui/src/bindings.ts is up to date)"
cargo test --workspace 2>&1 | tee "$logs/cargo-test.log"

step "fuzz smoke: every fuzz target for 40 s from the real test files (fuzz/README.md)"
bash fuzz/run.sh 40 2>&1 | tee "$logs/fuzz.log"

step "build the app with the UI embedded"
app=$(build_app)

step "sample studies (the viewer's end-to-end tests read them)"
bash scripts/sample-studies.sh

step "end-to-end tests (tauri-driver + WebKitWebDriver under Xvfb)"
# The apps' logs of this run only: the last test greps them for patient identifiers.
rm -rf tests/output/e2e/logs
DOKUEI_APP="$app" xvfb-run -a -s "-screen 0 1280x1024x24" \
  npm --prefix tests/e2e run --silent test 2>&1 | tee "$logs/e2e.log"
say "screenshots: tests/output/e2e/"

# One closing line for all three runners.
cargo_passed=$(grep -oE '[0-9]+ passed' "$logs/cargo-test.log" | awk '{s+=$1} END {print s+0}')
cargo_failed=$(grep -oE '[0-9]+ failed' "$logs/cargo-test.log" | awk '{s+=$1} END {print s+0}')
ui_passed=$(sed 's/\x1b\[[0-9;]*m//g' "$logs/vitest.log" | grep -E '^ +Tests' | grep -oE '[0-9]+ passed' | awk '{print $1+0}')
e2e_passed=$(grep -E '^# pass ' "$logs/e2e.log" | awk '{print $3}')
e2e_failed=$(grep -E '^# fail ' "$logs/e2e.log" | awk '{print $3}')
step "done"
echo "tests: $((cargo_passed + ${ui_passed:-0} + ${e2e_passed:-0})) passed, $((cargo_failed + ${e2e_failed:-0})) failed"
