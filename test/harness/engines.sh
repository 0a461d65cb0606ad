#!/usr/bin/env bash
# Throwaway engines for the test suite: a private dockerd on its own bridge and
# a private PostgreSQL 15 cluster, all under one root folder.
#
#   bash test/harness/engines.sh up     # start (or reuse) both, write $ROOT/env.sh
#   bash test/harness/engines.sh down   # stop both, remove the bridge and $ROOT
#
# Settings (environment):
#   PULSER_TEST_ROOT         root folder              (default /tmp/pulser-test)
#   PULSER_TEST_PG_PORT      PostgreSQL TCP port      (default 55432)
#   PULSER_TEST_BRIDGE       linux bridge name        (default pulsert0, max 15 chars)
#   PULSER_TEST_BRIDGE_CIDR  bridge address/prefix    (default 172.29.0.1/24)
#   PULSER_TEST_PG_BIN       PostgreSQL binaries      (default /usr/lib/postgresql/15/bin)
#
# Needs root (dockerd, ip link). Works next to another dockerd on the machine:
# own socket, data/exec roots, pidfile, bridge, config file and containerd
# namespace; no iptables rules are touched.
set -euo pipefail

ROOT=${PULSER_TEST_ROOT:-/tmp/pulser-test}
PG_PORT=${PULSER_TEST_PG_PORT:-55432}
BRIDGE=${PULSER_TEST_BRIDGE:-pulsert0}
BRIDGE_CIDR=${PULSER_TEST_BRIDGE_CIDR:-172.29.0.1/24}
PG_BIN=${PULSER_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}

DOCKER_DIR=$ROOT/docker
DOCKER_SOCK=$ROOT/docker.sock
DOCKER_PID=$DOCKER_DIR/dockerd.pid
DOCKER_LOG=$ROOT/dockerd.log
PG_DATA=$ROOT/pg/data
PG_SOCK=$ROOT/pgsock
PG_LOG=$ROOT/pg/postgres.log
MARKER=$ROOT/.pulser-test-root
DOCKER_WAIT=${PULSER_TEST_DOCKER_WAIT:-60}

log() { printf 'engines: %s\n' "$*" >&2; }
die() { printf 'engines: error: %s\n' "$*" >&2; exit 1; }

# The docker CLI must not pick up a DOCKER_HOST/context from the caller.
dk() { env -u DOCKER_CONTEXT docker -H "unix://$DOCKER_SOCK" "$@"; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
read_pid() { [ -f "$1" ] && tr -dc '0-9' <"$1" || true; }

as_pg() { runuser -u postgres -- "$@"; }

check_root_path() {
  case "$ROOT" in
    '' | / | /tmp | /tmp/ | /root | /home | /var | /usr | /etc) die "refusing PULSER_TEST_ROOT='$ROOT'" ;;
    /*) ;;
    *) die "PULSER_TEST_ROOT must be an absolute path (got '$ROOT')" ;;
  esac
}

# ---------------------------------------------------------------- docker ---

bridge_up() {
  if ! ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    ip link add name "$BRIDGE" type bridge
  fi
  if ! ip -4 addr show dev "$BRIDGE" | grep -qF " ${BRIDGE_CIDR} "; then
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  fi
  ip link set dev "$BRIDGE" up
}

# Bridged traffic goes through iptables' FORWARD chain when br_netfilter is
# loaded. Another dockerd with iptables on sets that chain's policy to DROP,
# which would cut container-to-container traffic on our bridge: let our
# bridge's own traffic through (removed again by `down`).
FWD_RULE=(FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment pulser-test -j ACCEPT)

forward_allow() {
  command -v iptables >/dev/null || return 0
  iptables -w 5 -C "${FWD_RULE[@]}" 2>/dev/null && return 0
  iptables -w 5 -I "${FWD_RULE[@]}" 2>/dev/null ||
    log "note: could not add an iptables FORWARD rule for $BRIDGE (container-to-container traffic may be blocked if another engine set FORWARD to DROP)"
}

forward_remove() {
  command -v iptables >/dev/null || return 0
  while iptables -w 5 -D "${FWD_RULE[@]}" 2>/dev/null; do :; done
}

# The network of BRIDGE_CIDR (host bits cleared), as pg_hba.conf wants it.
bridge_subnet() {
  local ip=${BRIDGE_CIDR%/*} bits=${BRIDGE_CIDR#*/} a b c d n mask
  IFS=. read -r a b c d <<<"$ip"
  n=$(((a << 24) | (b << 16) | (c << 8) | d))
  mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
  n=$((n & mask))
  echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))/$bits"
}

docker_answers() { dk version >/dev/null 2>&1; }

docker_up() {
  command -v dockerd >/dev/null || die "dockerd not found (apt-get install -y docker.io)"
  command -v docker >/dev/null || die "docker CLI not found (apt-get install -y docker.io)"

  local pid
  pid=$(read_pid "$DOCKER_PID")
  if pid_alive "$pid" && docker_answers; then
    log "dockerd already up (pid $pid), reusing"
    forward_allow
    return 0
  fi
  if pid_alive "$pid"; then
    # Started earlier but not answering: give it the usual time before giving up.
    log "dockerd (pid $pid) is running but not answering yet; waiting"
  else
    rm -f "$DOCKER_PID" "$DOCKER_SOCK"
    bridge_up
    forward_allow
    mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec"
    # Own (empty) config file: a machine-wide /etc/docker/daemon.json must not
    # leak in (and would clash with the flags below).
    [ -f "$DOCKER_DIR/daemon.json" ] || echo '{}' >"$DOCKER_DIR/daemon.json"
    setsid dockerd \
      --config-file "$DOCKER_DIR/daemon.json" \
      --data-root "$DOCKER_DIR/data" \
      --exec-root "$DOCKER_DIR/exec" \
      --pidfile "$DOCKER_PID" \
      -H "unix://$DOCKER_SOCK" \
      --containerd-namespace pulser-test \
      --containerd-plugins-namespace pulser-test-plugins \
      --iptables=false \
      --ip-masq=false \
      --ip-forward=false \
      --bridge="$BRIDGE" \
      --storage-driver=vfs \
      --shutdown-timeout=2 \
      </dev/null >"$DOCKER_LOG" 2>&1 8>&- &
    pid=$!
    disown "$pid" 2>/dev/null || true
  fi

  local deadline=$((SECONDS + DOCKER_WAIT))
  until docker_answers; do
    if ! pid_alive "$pid"; then
      log "dockerd exited during start-up; last lines of $DOCKER_LOG:"
      tail -n 30 "$DOCKER_LOG" >&2 || true
      die "dockerd failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "dockerd did not answer on unix://$DOCKER_SOCK within ${DOCKER_WAIT}s; last lines of $DOCKER_LOG:"
      tail -n 30 "$DOCKER_LOG" >&2 || true
      die "dockerd start-up timed out"
    fi
    sleep 0.1
  done
  log "dockerd up (pid $pid) on unix://$DOCKER_SOCK, bridge $BRIDGE ($BRIDGE_CIDR)"
}

docker_down() {
  local pid cpid
  pid=$(read_pid "$DOCKER_PID")
  if pid_alive "$pid"; then
    # Kill containers first: a PID 1 that ignores SIGTERM would otherwise make
    # the daemon wait for its shutdown timeout.
    if docker_answers; then
      local ids
      ids=$(dk ps -aq 2>/dev/null || true)
      if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        dk rm -f -v $ids >/dev/null 2>&1 || true
      fi
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 200; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    if pid_alive "$pid"; then
      log "dockerd (pid $pid) did not stop in 20s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # The containerd that this dockerd supervises (when it started its own).
  cpid=$(read_pid "$DOCKER_DIR/exec/containerd/containerd.pid")
  if pid_alive "$cpid" && tr '\0' ' ' <"/proc/$cpid/cmdline" 2>/dev/null | grep -qF "$DOCKER_DIR"; then
    kill -TERM "$cpid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      pid_alive "$cpid" || break
      sleep 0.1
    done
    pid_alive "$cpid" && kill -KILL "$cpid" 2>/dev/null || true
  fi
  forward_remove
  if ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    ip link del dev "$BRIDGE" 2>/dev/null || log "could not remove bridge $BRIDGE"
  fi
}

# ------------------------------------------------------------ postgresql ---

pg_running_port() {
  # Line 4 of postmaster.pid is the port the running server listens on.
  [ -f "$PG_DATA/postmaster.pid" ] && sed -n 4p "$PG_DATA/postmaster.pid" | tr -dc '0-9' || true
}

pg_up() {
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 not found in $PG_BIN (apt-get install -y postgresql-15)"
  id postgres >/dev/null 2>&1 || die "no 'postgres' user (apt-get install -y postgresql-15)"
  as_pg test -x "$ROOT" || die "user postgres cannot enter $ROOT: pick a PULSER_TEST_ROOT under /tmp"

  mkdir -p "$ROOT/pg" "$PG_SOCK"
  chown postgres: "$ROOT/pg" "$PG_SOCK"
  chmod 700 "$ROOT/pg"

  if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    if [ "$(pg_running_port)" = "$PG_PORT" ]; then
      log "postgres already up on port $PG_PORT, reusing"
      return 0
    fi
    log "postgres runs on port $(pg_running_port), restarting on $PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  fi

  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    rm -rf "$PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
      >"$ROOT/pg/initdb.log" 2>&1 || {
      tail -n 30 "$ROOT/pg/initdb.log" >&2
      die "initdb failed"
    }
  fi
  # Containers on the test bridge (a stand-in Odoo) reach the cluster at the bridge gateway.
  local hba="host all all $(bridge_subnet) trust"
  grep -qxF "$hba" "$PG_DATA/pg_hba.conf" || echo "$hba" >>"$PG_DATA/pg_hba.conf"

  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 \
    -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1,${BRIDGE_CIDR%/*} -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null 8>&-; then
    log "postgres failed to start; last lines of $PG_LOG:"
    tail -n 30 "$PG_LOG" >&2 || true
    die "postgres failed to start on port $PG_PORT (is the port taken? set PULSER_TEST_PG_PORT)"
  fi
  log "postgres up on 127.0.0.1:$PG_PORT and ${BRIDGE_CIDR%/*}:$PG_PORT"
}

pg_down() {
  [ -x "$PG_BIN/pg_ctl" ] || return 0
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 20 stop >/dev/null 2>&1 || {
      local pid
      pid=$(sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9' || true)
      pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    }
  fi
}

# -------------------------------------------------------------- commands ---

write_env() {
  local tmp=$ROOT/env.sh.tmp
  cat >"$tmp" <<EOF
# Written by test/harness/engines.sh; source it to reach the test engines.
export PULSER_TEST_ROOT='$ROOT'
export DOCKER_HOST='unix://$DOCKER_SOCK'
export PULSER_TEST_BRIDGE='$BRIDGE'
export PULSER_TEST_BRIDGE_IP='${BRIDGE_CIDR%/*}'
export PGHOST=127.0.0.1
export PGPORT=$PG_PORT
export PGUSER=postgres
export PULSER_TEST_PG_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres'
EOF
  mv "$tmp" "$ROOT/env.sh"
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "must run as root (dockerd, ip link)"
  check_root_path
  if [ -e "$ROOT" ] && [ ! -f "$MARKER" ] && [ -n "$(ls -A "$ROOT" 2>/dev/null)" ]; then
    die "$ROOT exists, is not empty and was not made by this script"
  fi
  mkdir -p "$ROOT"
  chmod 755 "$ROOT"
  touch "$MARKER"
  local t0=$SECONDS
  # The bridge exists before PostgreSQL starts, which listens on its gateway address too.
  bridge_up
  # PostgreSQL comes up while dockerd starts.
  pg_up &
  local pg_job=$!
  docker_up
  wait "$pg_job" || die "postgres start-up failed"
  write_env
  log "ready in $((SECONDS - t0))s; source $ROOT/env.sh"
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  check_root_path
  if [ -e "$ROOT" ] && [ ! -f "$MARKER" ]; then
    die "$ROOT was not made by this script; not touching it"
  fi
  pg_down
  docker_down
  if [ -d "$ROOT" ]; then
    # Anything dockerd left mounted under the root (netns, shm) goes first.
    awk -v r="$ROOT/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$ROOT"
  fi
  log "down"
}

# One `up` or `down` at a time per root (the lock lives next to the root,
# which `down` removes). Daemons are started with fd 8 closed.
lock_engines() {
  exec 8>"$ROOT.engines.lock"
  flock -w 120 -x 8 || die "another engines.sh on $ROOT did not finish within 120s"
}

case "${1:-}" in
  up) check_root_path; lock_engines; cmd_up ;;
  down) check_root_path; lock_engines; cmd_down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
