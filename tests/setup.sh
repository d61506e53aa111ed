#!/usr/bin/env bash
# Installs what the observability tests need beyond Rust, when it is missing:
#   - Debian's chromium, for the dashboard test (tests/it/observe_tools.rs);
#   - a venv in target/promvenv with the prometheus_client parser, which validates /metrics
#     (tests/it/observe_tools.rs). promtool comes only in Debian's prometheus package, which
#     installs and starts the Prometheus server too, so the Python parser is used instead;
#   - strace, which tests/it/trust.rs and tests/it/promises.rs use to watch or hold restartd's
#     system calls;
#   - systemd-nspawn and mmdebstrap, and a Debian root filesystem with systemd and python3 in
#     target/systemd/root (about 30 s, once), for the tests against a real systemd
#     (tests/it/systemd.rs, tests/systemd/container.sh);
#   - a venv in target/uvvenv with uvicorn, the real server of tests/it/sockets.rs.
# Nothing here fails the build: what cannot be installed is said, and its tests skip saying so.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tests/setup.sh: installing chromium (apt-get)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >target/setup-chromium.log 2>&1; then
            echo "tests/setup.sh: could not install chromium; see target/setup-chromium.log"
        fi
    else
        echo "tests/setup.sh: chromium is missing and apt-get cannot be run here (not root or no apt-get)"
    fi
fi

if ! command -v strace >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tests/setup.sh: installing strace (apt-get)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace; } >target/setup-strace.log 2>&1; then
            echo "tests/setup.sh: could not install strace; see target/setup-strace.log"
        fi
    else
        echo "tests/setup.sh: strace is missing and apt-get cannot be run here (not root or no apt-get)"
    fi
fi

venv=target/promvenv
if ! "$venv/bin/python" -c 'import prometheus_client.parser' >/dev/null 2>&1; then
    echo "tests/setup.sh: creating $venv with prometheus_client (pip)"
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q prometheus_client; } >target/setup-promvenv.log 2>&1; then
        echo "tests/setup.sh: could not install prometheus_client; see target/setup-promvenv.log"
    fi
fi
# apt-get runs under /tmp/apt.lock where other jobs on this machine may install at the same time.
apt_install() {
    if command -v flock >/dev/null 2>&1; then
        flock /tmp/apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $*"
    else
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    fi
}

if ! command -v systemd-nspawn >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tests/setup.sh: installing systemd-container and mmdebstrap (apt-get)"
        if ! apt_install systemd-container mmdebstrap >target/setup-systemd.log 2>&1; then
            echo "tests/setup.sh: could not install them; see target/setup-systemd.log"
        fi
    else
        echo "tests/setup.sh: systemd-nspawn or mmdebstrap is missing and apt-get cannot be run here"
    fi
fi
if [ ! -x target/systemd/root/lib/systemd/systemd ] && command -v mmdebstrap >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
    echo "tests/setup.sh: building the systemd test root filesystem in target/systemd/root (mmdebstrap)"
    if ! bash tests/systemd/container.sh build >target/setup-systemd-root.log 2>&1; then
        echo "tests/setup.sh: could not build it; see target/setup-systemd-root.log"
    fi
fi
# uvicorn, for the --socket tests with a real ASGI server (tests/it/sockets.rs: `uvicorn --fd 3`).
uvvenv=target/uvvenv
if ! [ -x "$uvvenv/bin/uvicorn" ]; then
    echo "tests/setup.sh: creating $uvvenv with uvicorn (pip)"
    if ! { python3 -m venv "$uvvenv" && "$uvvenv/bin/pip" install -q uvicorn; } >target/setup-uvvenv.log 2>&1; then
        echo "tests/setup.sh: could not install uvicorn; see target/setup-uvvenv.log"
    fi
fi
exit 0
