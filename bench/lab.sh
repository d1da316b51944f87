#!/usr/bin/env bash
# Lab benchmark: cold build of the binaries (with --cold), `lab up` wall time for a hub and
# three members, resident memory of the whole lab, and `lab down` time.
#
#   bench/lab.sh           use the binary cache as it is
#   bench/lab.sh --cold    build into empty Go module, Go build and binary caches first
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.venv/bin:$PATH"
STATE=$(mktemp -d)/lab
now() { date +%s.%N; }

if [[ "${1:-}" == --cold ]]; then
  COLD=$(mktemp -d)
  export GRIDAWARE_CACHE=$COLD/cache GOMODCACHE=$COLD/gomod GOCACHE=$COLD/gobuild
  t0=$(now); bash tools/build.sh >/dev/null; t1=$(now)
  printf 'cold build (download + compile, %s cores): %.0f s\n' "$(nproc)" "$(awk "BEGIN{print $t1 - $t0}")"
fi
bash tools/build.sh >/dev/null 2>&1

t0=$(now); gridaware lab --state-dir "$STATE" up >/dev/null 2>&1; t1=$(now)
printf 'lab up (hub + 3 members, 7 nodes):        %.1f s\n' "$(awk "BEGIN{print $t1 - $t0}")"
t0=$(now); gridaware lab --state-dir "$STATE" up >/dev/null 2>&1; t1=$(now)
printf 'lab up again (no-op):                     %.1f s\n' "$(awk "BEGIN{print $t1 - $t0}")"
sleep 20  # let the controllers settle before reading memory
gridaware lab --state-dir "$STATE" env 2>&1 >/dev/null | sed 's/^# /lab resident memory after 20 s:           /'
python3 - "$STATE" <<'PY'
import sys, collections, psutil
from pathlib import Path
from gridaware.lab import local
state = local.load_state(Path(sys.argv[1]))
per = collections.Counter()
for c in state.clusters:
    for p in c.processes:
        per[p.component] += psutil.Process(p.pid).memory_info().rss
for k, v in per.most_common():
    print(f"  {k:<26}{v / 2**20:7.0f} MiB (all clusters)")
PY
t0=$(now); gridaware lab --state-dir "$STATE" down >/dev/null; t1=$(now)
printf 'lab down:                                 %.1f s\n' "$(awk "BEGIN{print $t1 - $t0}")"
