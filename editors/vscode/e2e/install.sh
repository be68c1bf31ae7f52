#!/usr/bin/env bash
# Installs what the end-to-end suite needs, from the registries this machine reaches:
#   Debian: chromium (the browser Playwright drives), ripgrep, libkrb5-dev (code-server builds kerberos);
#   npm:    code-server (a real VS Code), @playwright/test, as package-lock.json pins them.
# Fails, never skips, when something cannot be installed: `make test` then fails too.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v "${CODA_E2E_CHROMIUM:-chromium}" >/dev/null || need+=(chromium)
command -v rg >/dev/null || need+=(ripgrep)
command -v krb5-config >/dev/null || need+=(libkrb5-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "e2e/install.sh: install ${need[*]} (Debian packages), then run make test again" >&2
    exit 1
  fi
  # The package lists may be stale or absent on a fresh machine: refresh them once if the install fails.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
fi

# code-server's VS Code downloads ripgrep from GitHub in @vscode/ripgrep's postinstall, which this
# machine cannot reach. That script first looks in its cache, $TMPDIR/vscode-ripgrep-cache-<its
# version>/, for ripgrep-<VERSION>-<target>.tar.gz: Debian's rg, packed under that name, is found
# there. (Names from @vscode/ripgrep 1.15.11's lib/postinstall.js, the version code-server 4.100.3 pins.)
case "$(uname -m)" in
  x86_64) target=x86_64-unknown-linux-musl ;;
  aarch64) target=aarch64-unknown-linux-musl ;;
  *) echo "e2e/install.sh: no ripgrep target known for $(uname -m)" >&2; exit 1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/vscode-ripgrep-cache-1.15.11" "$tmp/rg"
cp "$(command -v rg)" "$tmp/rg/rg"
tar -C "$tmp/rg" -czf "$tmp/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-$target.tar.gz" rg

# code-server's postinstall runs only when npm is told it may (allowScripts in package.json, and
# unsafe-perm as root), and it builds native modules with node-gyp, which npx fetches (yes=true).
# node-gyp would download Node's headers from nodejs.org; the nodesource package has them in /usr.
if [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi
TMPDIR="$tmp" npm_config_yes=true npm_config_unsafe_perm=true npm ci --no-audit --no-fund --loglevel=error
test -x node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg
