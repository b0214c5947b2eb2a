# Helpers shared by Dokuei's scripts. Sourced, not run.

say() { printf '\033[1m[dokuei]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[dokuei] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Cargo builds go to one target folder outside the clone, so that a fresh clone (as CI makes)
# reuses earlier builds. Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/dokuei/target}

# Cargo does not rebuild a workspace crate when only the checkout's location changed, so a
# target folder shared by two checkouts would keep paths compiled in from the other one
# (env!("CARGO_MANIFEST_DIR")). When the checkout differs from the last one that built here,
# touch the workspace's own sources (dependencies stay built).
claim_target_dir() {
  local mark="$CARGO_TARGET_DIR/.dokuei-checkout" here
  here=$(pwd -P)
  mkdir -p "$CARGO_TARGET_DIR"
  if [[ -f $mark && $(cat "$mark") != "$here" ]]; then
    say "target folder last built from $(cat "$mark"): rebuilding this checkout's crates"
    find crates src-tauri -name '*.rs' -not -path '*/target/*' -exec touch {} +
  fi
  echo "$here" >"$mark"
}

# Installs a folder's npm packages exactly as package-lock.json pins them, skipped when
# node_modules already matches it. Not `npm ci`: the registry reachable here serves only the Linux
# builds of platform-specific optional packages (e.g. @tauri-apps/cli-darwin-x64), so the lock
# cannot list the others and `npm ci` calls it out of sync. `npm install --no-save` installs from
# the lock and never rewrites it.
npm_install_locked() {
  local dir=$1 stamp want
  stamp="$dir/node_modules/.dokuei-lock-sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "npm packages in $dir: already installed"
  else
    say "npm packages in $dir: installing from package-lock.json"
    (cd "$dir" && npm install --no-save --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
}

# Builds the desktop app with the UI embedded; prints nothing else on stdout but the binary path.
build_app() {
  (cd ui && npm run --silent build >&2)
  cargo build --quiet -p dokuei-app --features custom-protocol >&2
  echo "$CARGO_TARGET_DIR/debug/dokuei-app"
}
