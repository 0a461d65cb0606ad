#!/usr/bin/env bash
# Remote hosts for tests: N network namespaces on one bridge, each with its own sshd and its own
# dockerd, reached from this machine only over SSH (the Docker socket is never used directly).
#
#   bash test/harness/hosts.sh up NAME [COUNT]     # start (or reuse) NAME's hosts, write env.json
#   bash test/harness/hosts.sh down NAME           # stop them, remove namespaces, links and files
#   bash test/harness/hosts.sh link NAME I up|down # cut or restore host I's network link
#   bash test/harness/hosts.sh sshd NAME I stop|start
#   bash test/harness/hosts.sh drop NAME I         # kill host I's SSH sessions (not its listener)
#   bash test/harness/hosts.sh rekey NAME I        # give host I a new host key (restarts sshd)
#
# Everything lives under $PULSER_TEST_ROOT/hosts-NAME; namespace, bridge and link names are
# derived from that path, and each set of hosts takes the first free 10.203.N.0/24, so parallel
# runs and parallel test files do not collide. Needs root, iproute2, openssh-server, docker.io.
# PULSER_TEST_HOSTS_DOCKER=0 starts no dockerd (hosts that are only reached over SFTP).
set -euo pipefail

ROOT=${PULSER_TEST_ROOT:-/tmp/pulser-test}
cmd=${1:-}
NAME=${2:-}
[ -n "$cmd" ] && [ -n "$NAME" ] || { echo "usage: $0 up|down|link|sshd|drop|rekey NAME …" >&2; exit 2; }
case "$NAME" in *[!a-z0-9-]*) echo "hosts: NAME must be lower-case letters, digits and dashes" >&2; exit 2 ;; esac

DIR=$ROOT/hosts-$NAME
TAG=$(printf '%s' "$DIR" | sha1sum | cut -c1-6)
BRIDGE=pb$TAG
DOCKER_WAIT=${PULSER_TEST_DOCKER_WAIT:-60}
WITH_DOCKER=${PULSER_TEST_HOSTS_DOCKER:-1}

log() { printf 'hosts[%s]: %s\n' "$NAME" "$*" >&2; }
die() { printf 'hosts[%s]: error: %s\n' "$NAME" "$*" >&2; exit 1; }
ns() { echo "pulser-$TAG-h$1"; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
read_pid() { [ -f "$1" ] && tr -dc '0-9' <"$1" || true; }

# The first 10.203.N.0/24 that no interface on the machine uses; kept in $DIR/subnet.
allocate_subnet() {
  if [ -f "$DIR/subnet" ]; then cat "$DIR/subnet"; return; fi
  exec 7>/tmp/pulser-hosts-subnets.lock
  flock -w 30 -x 7
  local n used
  used=$(ip -4 -o addr show | awk '{print $4}')
  for ((n = 20; n < 250; n++)); do
    grep -q "^10\.203\.$n\." <<<"$used" && continue
    compgen -G "/tmp/*/hosts-*/subnet" >/dev/null && grep -qx "$n" /tmp/*/hosts-*/subnet 2>/dev/null && continue
    echo "$n" >"$DIR/subnet"
    exec 7>&-
    echo "$n"
    return
  done
  die "no free 10.203.N.0/24 subnet"
}

host_addr() { echo "10.203.$(cat "$DIR/subnet").$((10 + $1))"; }

fingerprint() { ssh-keygen -lf "$1" | awk '{print $2}'; }

sshd_up() {
  local i=$1 h=$DIR/h$1 pid
  pid=$(read_pid "$h/sshd.pid")
  pid_alive "$pid" && return 0
  mkdir -p /run/sshd
  nsenter --net="/run/netns/$(ns "$i")" /usr/sbin/sshd -f "$h/sshd_config" -E "$h/sshd.log"
}

sshd_down() {
  local pid
  pid=$(read_pid "$DIR/h$1/sshd.pid")
  pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
  rm -f "$DIR/h$1/sshd.pid"
}

# Session processes of host I's sshd: every sshd in the namespace but the listener.
drop_sessions() {
  local i=$1 listener p
  listener=$(read_pid "$DIR/h$i/sshd.pid")
  for p in $(ip netns pids "$(ns "$i")"); do
    [ "$p" = "$listener" ] && continue
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ] && kill -KILL "$p" 2>/dev/null || true
  done
}

host_up() {
  local i=$1 h=$DIR/h$1 n addr nsname veth peer
  n=$(cat "$DIR/subnet")
  addr=$(host_addr "$i")
  nsname=$(ns "$i")
  veth=pv$TAG$i
  peer=pp$TAG$i
  mkdir -p "$h/docker/data" "$h/docker/exec"
  if ! ip netns list | grep -qw "$nsname"; then
    ip netns add "$nsname"
  fi
  if ! ip link show dev "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name "$peer"
    ip link set "$peer" netns "$nsname"
    ip netns exec "$nsname" ip link set "$peer" name eth0
    ip link set "$veth" master "$BRIDGE"
  fi
  ip link set "$veth" up
  ip netns exec "$nsname" ip link set lo up
  ip netns exec "$nsname" ip link set eth0 up
  ip netns exec "$nsname" ip -4 addr show dev eth0 | grep -qF " $addr/24 " || ip netns exec "$nsname" ip addr add "$addr/24" dev eth0
  ip netns exec "$nsname" ip route replace default via "10.203.$n.1"
  # The engine's container bridge lives inside the namespace: the same address on every host.
  if ! ip netns exec "$nsname" ip link show dev br0 >/dev/null 2>&1; then
    ip netns exec "$nsname" ip link add br0 type bridge
    ip netns exec "$nsname" ip addr add 192.168.240.1/24 dev br0
  fi
  ip netns exec "$nsname" ip link set br0 up

  [ -f "$h/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$h/ssh_host_ed25519_key"
  cp "$DIR/client_ed25519.pub" "$h/authorized_keys"
  cat >"$h/sshd_config" <<EOF
Port 22
ListenAddress $addr
HostKey $h/ssh_host_ed25519_key
AuthorizedKeysFile $h/authorized_keys
PidFile $h/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
ClientAliveInterval 5
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
EOF
  sshd_up "$i"
  [ "$WITH_DOCKER" = 1 ] || return 0

  local pid
  pid=$(read_pid "$h/docker/dockerd.pid")
  if ! pid_alive "$pid"; then
    rm -f "$h/docker.sock" "$h/docker/dockerd.pid"
    [ -f "$h/docker/daemon.json" ] || echo '{}' >"$h/docker/daemon.json"
    # nsenter rather than `ip netns exec`: the latter remounts /sys, hiding the cgroup mounts.
    nsenter --net="/run/netns/$nsname" setsid dockerd \
      --config-file "$h/docker/daemon.json" \
      --data-root "$h/docker/data" \
      --exec-root "$h/docker/exec" \
      --pidfile "$h/docker/dockerd.pid" \
      -H "unix://$h/docker.sock" \
      --containerd-namespace "pulser-$TAG-h$i" \
      --containerd-plugins-namespace "pulser-$TAG-h$i-plugins" \
      --iptables=false --ip-masq=false --ip-forward=false \
      --bridge=br0 \
      --storage-driver=vfs \
      --shutdown-timeout=2 \
      </dev/null >"$h/dockerd.log" 2>&1 7>&- 8>&- &
    disown $! 2>/dev/null || true
  fi
}

docker_wait() {
  local i=$1 h=$DIR/h$1 deadline=$((SECONDS + DOCKER_WAIT))
  until env -u DOCKER_CONTEXT docker -H "unix://$h/docker.sock" version >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$h/dockerd.log" >&2 || true
      die "dockerd of host $i did not answer within ${DOCKER_WAIT}s"
    fi
    sleep 0.2
  done
}

write_env() {
  local count=$1 i h sep='' tmp=$DIR/env.json.tmp
  {
    printf '{"name":"%s","hosts":[' "$NAME"
    for ((i = 1; i <= count; i++)); do
      h=$DIR/h$i
      printf '%s{"index":%d,"namespace":"%s","address":"%s","port":22,"user":"root","keyFile":"%s","fingerprint":"%s","dockerSocket":"%s","link":"pv%s%d"}' \
        "$sep" "$i" "$(ns "$i")" "$(host_addr "$i")" "$DIR/client_ed25519" "$(fingerprint "$h/ssh_host_ed25519_key.pub")" "$h/docker.sock" "$TAG" "$i"
      sep=,
    done
    printf ']}\n'
  } >"$tmp"
  mv "$tmp" "$DIR/env.json"
}

cmd_up() {
  local count=${1:-2} n i
  [ "$(id -u)" = 0 ] || die "must run as root (ip netns, dockerd)"
  mkdir -p "$DIR"
  n=$(allocate_subnet)
  if ! ip link show dev "$BRIDGE" >/dev/null 2>&1; then ip link add name "$BRIDGE" type bridge; fi
  ip -4 addr show dev "$BRIDGE" | grep -qF " 10.203.$n.1/24 " || ip addr add "10.203.$n.1/24" dev "$BRIDGE"
  ip link set dev "$BRIDGE" up
  [ -f "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C pulser-test -f "$DIR/client_ed25519"
  echo "$count" >"$DIR/count"
  for ((i = 1; i <= count; i++)); do host_up "$i"; done
  # The engines start in parallel; wait for all of them.
  if [ "$WITH_DOCKER" = 1 ]; then
    for ((i = 1; i <= count; i++)); do docker_wait "$i"; done
  fi
  write_env "$count"
  log "$count host(s) up on 10.203.$n.0/24; $DIR/env.json"
}

kill_pidfile() {
  local pid
  pid=$(read_pid "$1")
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((k = 0; k < 100; k++)); do pid_alive "$pid" || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

host_down() {
  local i=$1 h=$DIR/h$1 nsname p ids
  nsname=$(ns "$i")
  sshd_down "$i"
  if [ -S "$h/docker.sock" ]; then
    ids=$(env -u DOCKER_CONTEXT docker -H "unix://$h/docker.sock" ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || env -u DOCKER_CONTEXT docker -H "unix://$h/docker.sock" rm -f -v $ids >/dev/null 2>&1 || true
  fi
  kill_pidfile "$h/docker/dockerd.pid"
  kill_pidfile "$h/docker/exec/containerd/containerd.pid"
  if ip netns list | grep -qw "$nsname"; then
    for p in $(ip netns pids "$nsname" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$nsname" 2>/dev/null || true
  fi
  ip link del "pv$TAG$i" 2>/dev/null || true
}

cmd_down() {
  local count i
  count=$(cat "$DIR/count" 2>/dev/null || echo 0)
  # Hosts stop in parallel: each engine takes a moment to shut down.
  for ((i = 1; i <= count; i++)); do host_down "$i" & done
  wait
  ip link del "$BRIDGE" 2>/dev/null || true
  if [ -d "$DIR" ]; then
    awk -v r="$DIR/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$DIR"
  fi
  log "down"
}

exec 8>"$ROOT.hosts-$NAME.lock"
case "$cmd" in
  up) mkdir -p "$ROOT"; flock -w 180 -x 8 || die "locked"; cmd_up "${3:-2}" ;;
  down) flock -w 180 -x 8 || die "locked"; cmd_down ;;
  link)
    ip link set "pv$TAG${3:?host index}" "${4:?up|down}"
    # Back up: wait until the host answers on its SSH port again (neighbour entries recover).
    if [ "$4" = up ]; then
      addr=$(host_addr "$3")
      for ((k = 0; k < 100; k++)); do timeout 1 bash -c "</dev/tcp/$addr/22" 2>/dev/null && break; sleep 0.1; done
    fi
    ;;
  sshd) case "${4:-}" in stop) sshd_down "${3:?}" ;; start) sshd_up "${3:?}" ;; *) die "sshd NAME I stop|start" ;; esac ;;
  drop) drop_sessions "${3:?host index}" ;;
  rekey)
    h=$DIR/h${3:?host index}
    sshd_down "$3"; drop_sessions "$3"
    rm -f "$h/ssh_host_ed25519_key" "$h/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -f "$h/ssh_host_ed25519_key"
    sleep 0.2
    sshd_up "$3"
    fingerprint "$h/ssh_host_ed25519_key.pub"
    ;;
  *) die "unknown command $cmd" ;;
esac
