#!/usr/bin/env bash
# Installs everything flightdeck needs on a fresh Debian machine, idempotently.
#   tools/setup.sh            python + mariadb (what the unit and integration tiers need)
#   tools/setup.sh python     the project's virtualenv (.venv) from requirements-dev.txt
#   tools/setup.sh mariadb    Debian's mariadb-server binaries (never started as a service)
#   tools/setup.sh toolchains the Go-built Pulumi engine and local control plane (cached)
#   tools/setup.sh all        everything the three test tiers need
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"  # the python -m tools.* steps import from the checkout

step() { printf '\n== setup: %s\n' "$*" >&2; }
die() { printf 'setup failed at step "%s": %s\n' "$1" "$2" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq || die apt "apt-get update failed"; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die apt "apt-get install ${missing[*]} failed"
}

setup_python() {
  step "python virtualenv (.venv)"
  local stamp="$repo/.venv/.requirements.sha256"
  local want
  want=$(cat "$repo/requirements.txt" "$repo/policy/requirements.txt" "$repo/requirements-dev.txt" "$repo/pyproject.toml" \
    | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  [ -x "$repo/.venv/bin/python" ] || python3 -m venv "$repo/.venv" || die python "python3 -m venv failed"
  "$repo/.venv/bin/pip" install -q --disable-pip-version-check -r "$repo/requirements-dev.txt" \
    || die python "pip install -r requirements-dev.txt failed"
  # The operator CLI's console script; --no-deps because requirements*.txt pin everything.
  "$repo/.venv/bin/pip" install -q --disable-pip-version-check --no-deps -e "$repo" \
    || die python "pip install -e . failed"
  echo "$want" > "$stamp"
}

setup_mariadb() {
  step "mariadb-server (Debian package; the service is not started, tests run their own servers)"
  apt_install mariadb-server mariadb-client
  # Debian's postinst may start a system instance; tests never use it and it would hold port 3306.
  if command -v systemctl >/dev/null && systemctl is-active --quiet mariadb 2>/dev/null; then
    as_root systemctl stop mariadb || true
  fi
}

setup_toolchains() {
  # Go-built parts of the e2e tier, cached outside the repo (~/.cache/flightdeck) by version:
  # a warm run takes a few seconds; a cold one about an hour on 2 cores (timings in the README).
  apt_install openssl ca-certificates
  if ! command -v go >/dev/null; then
    [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH" || die toolchains "no Go toolchain on PATH (Go >= 1.26 needed)"
  fi
  step "Pulumi CLI, upstream's Python language host, kubernetes and random plugins (Go modules)"
  "$repo/.venv/bin/python" -m tools.pulumi_toolchain ensure || die toolchains "pulumi toolchain"
  step "etcd, kube-apiserver, controller-manager, scheduler, kwok (Go modules)"
  "$repo/.venv/bin/python" -m tools.k8s_toolchain --no-kubectl || die toolchains "kubernetes toolchain"
}

case "${1:-default}" in
  python) setup_python ;;
  mariadb) setup_mariadb ;;
  default) setup_python; setup_mariadb ;;
  toolchains) setup_python; setup_toolchains ;;
  all) setup_python; setup_mariadb; setup_toolchains ;;
  *) die args "unknown target '$1' (expected: python, mariadb, toolchains, all)" ;;
esac
