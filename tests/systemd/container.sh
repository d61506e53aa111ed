#!/usr/bin/env bash
# A real systemd (PID 1 of a systemd-nspawn container) for tests/it/systemd.rs, on a host that
# does not run systemd itself. Written from ../shared/tools/systemd-container.sh, the recipe tried
# on this kind of machine.
#
#   container.sh build             build the root filesystem once (mmdebstrap from apt's mirror)
#   container.sh can-run           exit 0 when this host can boot it, else say why and exit 1
#   container.sh start NAME        boot it (changes live in a tmpfs overlay), wait until running
#   container.sh exec NAME CMD...  run CMD inside, as root, in all its namespaces
#   container.sh stop NAME         halt it, then remove what the host kept (cgroups); idempotent
#
# The root filesystem is cached in $SYSTEMD_ROOT (target/systemd/root): later runs reuse it, and
# --volatile=overlay keeps it unchanged, so every boot starts from the same clean image.
# Limit: the memory controller stays on the host's cgroup v1 hierarchy, so MemoryMax= and
# OOMPolicy= are accepted inside but never fire.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=${SYSTEMD_ROOT:-$here/target/systemd/root}
RUN=${SYSTEMD_RUN:-$here/target/systemd/run}

mirror() {
  { grep -h "^URIs:" /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | cut -d" " -f2
    grep -h "^deb " /etc/apt/sources.list 2>/dev/null | head -1 | cut -d" " -f2; } | grep . | head -1
}

# The container's PID 1 (systemd): the child of nspawn.
leader() { pgrep -P "$(cat "$RUN/$1.pid" 2>/dev/null || echo 0)" 2>/dev/null | head -1; }
in_ctr() { local m=$1; shift; nsenter -t "$(leader "$m")" -a -- "$@"; }
cgroup() { echo "restartd-test-$1"; }

case "${1:-}" in
build)
  if [ -x "$ROOT/lib/systemd/systemd" ]; then exit 0; fi
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing"; exit 1; }
  mkdir -p "$(dirname "$ROOT")"
  rm -rf "$ROOT.tmp"
  mmdebstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,procps \
    bookworm "$ROOT.tmp" "$(mirror)"
  mv "$ROOT.tmp" "$ROOT"
  ;;
can-run)
  [ "$(id -u)" = 0 ] || { echo "not root: systemd-nspawn needs root"; exit 1; }
  command -v systemd-nspawn >/dev/null || { echo "systemd-nspawn is missing (apt-get install systemd-container)"; exit 1; }
  command -v nsenter >/dev/null || { echo "nsenter is missing (util-linux)"; exit 1; }
  [ -x "$ROOT/lib/systemd/systemd" ] || { echo "no root filesystem at $ROOT; run tests/setup.sh"; exit 1; }
  for h in systemd unified; do
    [ -d /sys/fs/cgroup/$h ] && [ -w /sys/fs/cgroup/$h ] \
      || { echo "/sys/fs/cgroup/$h is missing or read-only: nspawn cannot give systemd its cgroups"; exit 1; }
  done
  ;;
start)
  m=$2; shift 2
  mkdir -p "$RUN"
  cg=$(cgroup "$m")
  for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$cg"; done
  export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0
  # nspawn goes into a cgroup of its own, so that everything under it can be removed at stop.
  setsid bash -c 'for h in systemd unified; do echo $$ > /sys/fs/cgroup/$h/'"$cg"'/cgroup.procs; done
                  exec systemd-nspawn -q -D "$0" -M "$1" --boot --register=no --keep-unit \
                       --volatile=overlay --console=passive "${@:2}"' "$ROOT" "$m" "$@" \
      >"$RUN/$m.console.log" 2>&1 </dev/null &
  echo $! >"$RUN/$m.pid"
  for _ in $(seq 1 200); do [ -n "$(leader "$m")" ] && break; sleep 0.05; done
  [ -n "$(leader "$m")" ] || { echo "nspawn did not start:"; cat "$RUN/$m.console.log"; exit 1; }
  for _ in $(seq 1 200); do in_ctr "$m" test -S /run/systemd/private 2>/dev/null && break; sleep 0.05; done
  state=$(in_ctr "$m" timeout 60 systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in
    running|degraded) echo "state=$state" ;;
    *) echo "systemd did not come up (state '$state'):"; cat "$RUN/$m.console.log"; exit 1 ;;
  esac
  ;;
exec)
  m=$2; shift 2
  in_ctr "$m" "$@"
  ;;
stop)
  m=$2
  p=$(cat "$RUN/$m.pid" 2>/dev/null || true)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"   # nspawn: the first SIGTERM halts the container cleanly
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p"  # the second: terminate at once
      for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
      kill -0 "$p" 2>/dev/null && kill -KILL "$p"
    fi
  fi
  rm -f "$RUN/$m.pid" "$RUN/$m.console.log"
  cg=$(cgroup "$m")
  for h in systemd unified; do
    d=/sys/fs/cgroup/$h/$cg
    [ -d "$d" ] || continue
    # Anything still in it (there should be nothing) is killed before its cgroups go.
    for _ in $(seq 1 50); do
      pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
      [ -z "$pids" ] && break
      kill -KILL $pids 2>/dev/null || true
      sleep 0.05
    done
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  ;;
*) sed -n '2,16p' "$0"; exit 2 ;;
esac
