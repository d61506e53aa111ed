#!/usr/bin/env bash
# Installs the peers the benchmarks compare restartd with, and builds the C helpers.
# Run by hand, as root, before bench/run.py: bash bench/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# supervisord, runit (runsv, svlogd), daemontools (supervise, multilog), s6 (s6-supervise, s6-log),
# tini, dumb-init, hyperfine; procps for pidof, strace for profiles.
apt-get install -y -qq supervisor runit daemontools s6 tini dumb-init hyperfine procps strace gcc >/dev/null
# supervisor's package starts a system-wide supervisord: the benchmarks run their own.
systemctl disable --now supervisor 2>/dev/null || service supervisor stop 2>/dev/null || true
# PM2 from npm, into bench/.npm (not global).
npm install --silent --prefix "$here/.npm" pm2@5 >/dev/null
# circus and uvicorn (the availability benchmark's server) from PyPI, in a venv.
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q circus uvicorn
# The C helpers.
for c in "$here"/c/*.c; do
  gcc -O2 -Wall -o "${c%.c}" "$c"
done
echo "peers installed; helpers built in $here/c"
