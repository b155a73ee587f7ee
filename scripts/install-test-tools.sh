#!/usr/bin/env bash
# Puts the system tools the tests use in place when they are missing, from Debian packages.
#
#   promtool (package prometheus): checks and unit-tests observability/alerts.yaml. Only the promtool binary is
#   unpacked from the package into the virtualenv's bin/ (no Prometheus server is installed or started).
#   postgresql: the jsonb conformance test runs a private server of its own (binaries only are needed).
#   chromium: the browser test drives /usr/bin/chromium headless through Playwright (no browser is downloaded by
#   Playwright itself). Installed with apt-get, which needs root or password-less sudo.
#
# Usage: scripts/install-test-tools.sh VENV_BIN. Without apt it installs nothing and says so; the tests that need a
# missing tool then skip and name it. It never fails the build.
set -uo pipefail
BIN=${1:-.venv/bin}

say() { echo "install-test-tools: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1
    fi
}

# Unpack one binary of a Debian package into $BIN: apt-get download needs no root once the package lists exist.
unpack_binary() {  # package path-in-package
    local pkg=$1 path=$2 work
    work=$(mktemp -d) || return 1
    if ! (cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>&1); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
        (cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>&1) || { rm -rf "$work"; return 1; }
    fi
    dpkg-deb -x "$work"/"$pkg"_*.deb "$work/root" && install -m 0755 "$work/root/$path" "$BIN/" 
    local rc=$?
    rm -rf "$work"
    return $rc
}

if ! command -v promtool >/dev/null 2>&1 && [ ! -x "$BIN/promtool" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "apt-get not found: install promtool (Debian package prometheus) yourself; the alert rule tests skip"
    elif unpack_binary prometheus usr/bin/promtool; then
        say "promtool unpacked into $BIN"
    else
        say "could not fetch the prometheus package with apt; the alert rule tests skip"
    fi
fi
# Install one Debian package with apt-get (refreshing the package lists once if the first try fails).
apt_install() {  # package what-skips
    local pkg=$1 skips=$2
    if ! command -v apt-get >/dev/null 2>&1; then
        say "apt-get not found: install $pkg yourself; $skips"
    elif ! as_root true; then
        say "not root and no password-less sudo: install $pkg yourself; $skips"
    else
        say "installing $pkg with apt-get"
        local apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
        as_root "${apt[@]}" install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
          || { as_root "${apt[@]}" update -qq >/dev/null 2>&1 \
               && as_root "${apt[@]}" install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1; } \
          || say "apt-get could not install $pkg; $skips"
    fi
}

if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium "the browser test skips"
fi
# PostgreSQL's own jsonb text is the referee of the admin documents' versions: the test starts a private server on a
# socket of its own (no system service is used), so only the binaries are needed.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
    apt_install postgresql "the jsonb conformance test skips"
fi
exit 0
