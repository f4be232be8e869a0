#!/usr/bin/env bash
# Start a Docker engine for the docker fault tests (issue 5), idempotently, and say how long it
# took. Installs Debian's docker.io when dockerd is missing, then runs one dockerd on vfs with no
# bridge network and no iptables (everything stays on 127.0.0.1, see shared DESIGN.md), listening
# on the usual unix socket and on tcp://127.0.0.1:2375 (the "second engine socket" the DOCKER_HOST
# test uses). If the engine cannot start, it prints why and writes the reason to a marker file the
# tests read, so they are reported as skipped with that reason (never silently), and exits 0.
#
#   scripts/start-docker.sh          start (or find) the engine
#   scripts/start-docker.sh --stop   stop the dockerd this script started
set -uo pipefail

state=${RESILDRILL_DOCKER_STATE:-/tmp/resildrill-docker}
marker="$state/unavailable"          # read by tests/integration/docker/conftest.py
log="$state/dockerd.log"
pidfile="$state/dockerd.pid"
sock=/var/run/docker.sock
tcp=127.0.0.1:2375
wait_s=${RESILDRILL_DOCKER_WAIT_S:-60}
mkdir -p "$state"
t0=$(date +%s.%N)

took() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

give_up() {
  echo "$*" >"$marker"
  echo "start-docker: engine unavailable after $(took)s: $* (docker tests will be skipped)"
  exit 0
}

# A bounded ping of one engine endpoint (curl has its own deadline).
ping_unix() { curl -fsS --max-time 2 --unix-socket "$sock" http://docker/_ping >/dev/null 2>&1; }
ping_tcp() { curl -fsS --max-time 2 "http://$tcp/_ping" >/dev/null 2>&1; }

if [[ "${1:-}" == "--stop" ]]; then
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    echo "start-docker: stopped dockerd $pid"
  else
    echo "start-docker: no dockerd started by this script is running"
  fi
  rm -f "$pidfile"
  exit 0
fi

rm -f "$marker"
if ping_unix && ping_tcp; then
  echo "start-docker: engine already running (unix $sock and tcp://$tcp), $(took)s"
  exit 0
fi
if ping_unix; then
  # An engine we did not start, without the TCP socket: the DOCKER_HOST test needs that one.
  give_up "an engine already answers on $sock but not on tcp://$tcp; restart it with -H tcp://$tcp"
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then give_up "dockerd is not installed and this user is not root"; fi
  echo "start-docker: installing docker.io (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 120 apt-get update -qq >"$state/apt.log" 2>&1; then
    give_up "apt-get update failed (see $state/apt.log)"
  fi
  if ! timeout 180 apt-get install -y -qq --no-install-recommends docker.io >>"$state/apt.log" 2>&1
  then
    give_up "apt-get install docker.io failed (see $state/apt.log)"
  fi
  echo "start-docker: docker.io installed after $(took)s"
fi
if [[ $(id -u) -ne 0 ]]; then give_up "dockerd needs root (this user is $(id -un))"; fi

# --tls=false said explicitly: an unauthenticated TCP socket is what we want, on loopback only,
# and saying so spares the daemon's deprecation delay on recent versions.
setsid dockerd \
  --storage-driver=vfs --bridge=none --iptables=false --ip-masq=false \
  -H "unix://$sock" -H "tcp://$tcp" --tls=false \
  --pidfile "$pidfile" >"$log" 2>&1 </dev/null &
dpid=$!

deadline=$((SECONDS + wait_s))
until ping_unix && ping_tcp; do
  if ! kill -0 "$dpid" 2>/dev/null; then
    give_up "dockerd exited: $(grep -iE 'level=(fatal|error)|failed' "$log" | tail -n 1)"
  fi
  if ((SECONDS >= deadline)); then
    give_up "no answer on $sock and tcp://$tcp after ${wait_s}s (see $log)"
  fi
  sleep 0.2
done
echo "start-docker: engine up in $(took)s (dockerd pid $dpid, log $log)"
