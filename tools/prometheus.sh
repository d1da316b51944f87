#!/usr/bin/env bash
# Install Prometheus (and promtool) for the lab from Debian's `prometheus` package.
#
#   tools/prometheus.sh          install unless `prometheus` and `promtool` are already on PATH
#   tools/prometheus.sh --check  exit 1 unless both are on PATH
#
# The lab runs its own Prometheus as a lab process (loopback only, its own config and data
# directory under the lab's state directory), so the package's system service must never
# start: it would listen on 0.0.0.0:9090 with the distribution's config. A policy-rc.d that
# refuses every service start is in place for the install (the one already there, as in
# containers, is kept), and on a systemd machine the unit is stopped and disabled afterwards.
set -euo pipefail

have() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }
log() { printf '[prometheus %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [[ "${1:-}" == --check ]]; then have; exit; fi
have && exit 0

command -v apt-get >/dev/null 2>&1 \
  || die "no prometheus on PATH and no apt-get: install Prometheus >= 2.40 (prometheus and promtool) yourself"
SUDO=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "installing prometheus needs root (or sudo)"
  SUDO=(sudo)
fi

POLICY=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\n# gridaware tools/prometheus.sh: no service starts during the install\nexit 101\n' \
    | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  own_policy=1
fi
cleanup() { if [[ $own_policy == 1 ]]; then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap cleanup EXIT

start=$(date +%s)
log "apt-get update"
"${SUDO[@]}" apt-get update -qq
log "apt-get install prometheus"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if [[ -d /run/systemd/system ]]; then
  "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
have || die "apt-get installed prometheus but prometheus/promtool are not on PATH"
log "installed $(prometheus --version 2>&1 | head -1) in $(( $(date +%s) - start ))s"
