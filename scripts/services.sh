#!/usr/bin/env bash
# Makes this machine ready for the tests that talk to real services:
#
# - Prometheus and promtool (Debian package `prometheus`), installed but NOT started as a
#   service: each test run starts its own Prometheus on a free loopback port.
# - PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, started if they are not
#   answering (and installed from Debian's packages only if missing entirely).
#
# Idempotent and quick when everything is already there (no apt calls at all then).
# Run it directly (`scripts/services.sh`) or source it from another script; it needs root
# only when it has to install or start something.
#
# Usage: scripts/services.sh

# When sourced, keep the caller's shell options; when run, be strict.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
fi

_services_log() { echo "services: $*" >&2; }

# apt-get install without prompts and without starting any daemon: there is no systemd
# here, and a package's postinst must not grab a port (Prometheus would take :9090). A
# policy-rc.d that exits 101 tells invoke-rc.d "not allowed"; we install one only for the
# duration of the install when the machine has none, and leave an existing one alone.
_services_apt_install() {
  local created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# Installed by ballast scripts/services.sh during apt-get install.\nexit 101\n' \
      >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  local status=0
  if [[ -z "${_SERVICES_APT_UPDATED:-}" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || status=$?
    _SERVICES_APT_UPDATED=1
  fi
  if [[ $status -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
      >/dev/null || status=$?
  fi
  if [[ $created_policy -eq 1 ]]; then
    rm -f /usr/sbin/policy-rc.d
  fi
  return $status
}

# Stops a Prometheus that a package install may have started anyway (e.g. on a machine
# whose policy-rc.d allowed it), so that nothing of ours or the package's holds :9090.
_services_stop_packaged_prometheus() {
  if [[ -x /etc/init.d/prometheus ]] && pgrep -x prometheus -u prometheus >/dev/null 2>&1; then
    _services_log "stopping the Prometheus the package started"
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
}

services_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    return 0
  fi
  _services_log "installing prometheus (Debian package)"
  _services_apt_install prometheus || return 1
  _services_stop_packaged_prometheus
  prometheus --version 2>&1 | head -n 1 >&2
}

services_postgresql() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z "$(ls /etc/postgresql 2>/dev/null)" ]]; then
    _services_log "installing postgresql (Debian package)"
    _services_apt_install postgresql || return 1
  fi
  _services_log "starting PostgreSQL"
  # shellcheck disable=SC2046 # one version directory, e.g. 15
  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start || return 1
  local tries=0
  until pg_isready -q -h 127.0.0.1 -p 5432; do
    tries=$((tries + 1))
    if [[ $tries -ge 50 ]]; then
      _services_log "PostgreSQL did not answer on 127.0.0.1:5432"
      return 1
    fi
    sleep 0.2
  done
}

services_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    _services_log "installing redis-server (Debian package)"
    _services_apt_install redis-server || return 1
  fi
  _services_log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || return 1
  local tries=0
  until redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; do
    tries=$((tries + 1))
    if [[ $tries -ge 50 ]]; then
      _services_log "Redis did not answer on 127.0.0.1:6379"
      return 1
    fi
    sleep 0.2
  done
}

# Everything the tests need.
services_all() {
  services_prometheus || return 1
  services_postgresql || return 1
  services_redis || return 1
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  services_all
fi
