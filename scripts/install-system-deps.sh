#!/usr/bin/env bash
# System packages the test suite needs beyond the Python venv, installed from Debian's own
# archive (never a browser or driver downloaded by a tool). Idempotent: installs only what is
# missing, so .ci/run can call it on every run.
#   chromium + chromium-driver  the headless browser that opens report.html in
#                               tests/integration/test_report_browser.py
#   postgresql                  the ward EHR's second store (targets/ward-ehr/target-postgres.yaml,
#                               tests/integration/test_wardehr_postgres.py); its binaries are
#                               used directly from /usr/lib/postgresql/*/bin, no cluster is created
#   iperf3                      bulk throughput through the embedded proxy (benchmarks/proxy.py)
#   openssh-server/-client      the SSH hosts of targets/ward-ehr-hosts (each a container running
#                               this machine's /usr/sbin/sshd on its own 127.0.0.1 port) and
#                               ssh-keygen for their keys; the machine's own sshd is not started
#   dcmtk                       the bundled PACS (dcmqrscp, src/wardehr/pacs.py) and its echoscu
set -euo pipefail
packages=(chromium chromium-driver postgresql iperf3 openssh-server openssh-client dcmtk)
missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-system-deps: nothing to do (${packages[*]} present)"
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# No package may start a service on this machine (openssh-server would start sshd on port 22,
# every address): policy-rc.d answers "not allowed" while apt runs, unless one already exists.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 0755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-system-deps: installed ${missing[*]}"
