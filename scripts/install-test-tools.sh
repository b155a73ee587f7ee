#!/usr/bin/env bash
# Puts the system tools the tests use in place when they are missing, from Debian packages.
#
#   promtool (package prometheus): checks and unit-tests observability/alerts.yaml.
#   prometheus and prometheus-alertmanager (packages prometheus, prometheus-alertmanager): the servers that
#   `recsys-stack up --alerting` starts on loopback for the alerting tests, `make demo ALERTING=1` and the alerting
#   bench. Only the binaries are unpacked from the packages into the virtualenv's bin/ (no system service is
#   installed, configured or started). Debian's Alertmanager reads its notification templates from the fixed path
#   /usr/share/prometheus/alertmanager/ (default.tmpl, email.tmpl), so those two data files are unpacked there too,
#   which needs root or password-less sudo.
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

# Unpack files of a Debian package into $BIN (binaries) and, as root, to their own path under / (data files that a
# binary reads from a fixed place): apt-get download needs no root once the package lists exist.
unpack_binary() {  # package path-in-package... [--data path-in-package...]
    local pkg=$1 work path rc=0 data=0
    shift
    work=$(mktemp -d) || return 1
    if ! (cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>&1); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
        (cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>&1) || { rm -rf "$work"; return 1; }
    fi
    if dpkg-deb -x "$work"/"$pkg"_*.deb "$work/root"; then
        for path in "$@"; do
            if [ "$path" = --data ]; then data=1
            elif [ $data -eq 0 ]; then install -m 0755 "$work/root/$path" "$BIN/" || rc=1
            else
                as_root install -D -m 0644 "$work/root/$path" "/$path" \
                  || { say "not root and no password-less sudo: could not put /$path in place"; rc=1; }
            fi
        done
    else
        rc=1
    fi
    rm -rf "$work"
    return $rc
}

have() {  # binary: on PATH or already in $BIN
    command -v "$1" >/dev/null 2>&1 || [ -x "$BIN/$1" ]
}

fetch() {  # package what-skips binary... [--data path-in-package...]
    local pkg=$1 skips=$2 arg data=0 args=() names=()
    shift 2
    for arg in "$@"; do
        if [ "$arg" = --data ]; then data=1; args+=("$arg")
        elif [ $data -eq 0 ]; then args+=("usr/bin/$arg"); names+=("$arg")
        else args+=("$arg")
        fi
    done
    if ! command -v apt-get >/dev/null 2>&1; then
        say "apt-get not found: install ${names[*]} (Debian package $pkg) yourself; $skips"
    elif unpack_binary "$pkg" "${args[@]}"; then
        say "${names[*]} unpacked into $BIN"
    else
        say "could not fetch the $pkg package with apt; $skips"
    fi
}

# One download of the prometheus package serves both of its binaries.
missing=()
for tool in promtool prometheus; do have "$tool" || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    fetch prometheus "the alert rule and alerting tests skip" "${missing[@]}"
fi
AM_TEMPLATES=usr/share/prometheus/alertmanager
if ! have prometheus-alertmanager && ! have alertmanager; then
    fetch prometheus-alertmanager "the alerting tests skip" prometheus-alertmanager \
      --data "$AM_TEMPLATES/default.tmpl" "$AM_TEMPLATES/email.tmpl"
elif have prometheus-alertmanager && [ ! -f "/$AM_TEMPLATES/default.tmpl" ]; then
    # The binary is there but not the templates it needs (an older run of this script).
    unpack_binary prometheus-alertmanager --data "$AM_TEMPLATES/default.tmpl" "$AM_TEMPLATES/email.tmpl" \
      && say "Alertmanager's templates unpacked into /$AM_TEMPLATES" \
      || say "could not put Alertmanager's templates in /$AM_TEMPLATES; the alerting tests skip"
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
