#!/usr/bin/env bash
# Ops figures under load (release build, loopback): how long until systemd hears READY=1, what a
# Prometheus scrape costs and how long a config reload takes while AGENTS agents talk with as
# many callers and CALLS - AGENTS more callers wait in the queue.
#
#   integration-tests/load/ops.sh [CALLS] [AGENTS]      # default 200 50
#
# The gateway runs config.example.toml routed to queue "support" (SIP on 127.0.0.1:5090, agents
# on 127.0.0.1:4499, admin 127.0.0.1:9470, metrics 127.0.0.1:9464) with agents load-1 …
# load-AGENTS; `trunkgate-agent --swarm AGENTS --echo` answers; SIPp sends 28 s of speech per
# call (scenarios/uac_queue_speech.xml).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
calls="${1:-200}"
agents="${2:-50}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

cd "${root}"
cargo build --release --locked --bin trunkgate --bin trunkgate-agent >&2
gateway="${root}/target/release/trunkgate"
agent="${root}/target/release/trunkgate-agent"

config="${work}/load.toml"
sed -e 's|^udp = .*|udp = ["127.0.0.1:5090"]|' \
    -e 's|^tcp = .*|tcp = ["127.0.0.1:5090"]|' \
    -e 's|^route = "ivr:main"|route = "queue:support"|' \
    -e "s|^dir = \"prompts\"|dir = \"${root}/prompts\"|" \
    -e 's|^listen = "0.0.0.0:4433"|listen = "127.0.0.1:4499"|' \
    -e "s|^state_dir = \"state\"|state_dir = \"${work}/state\"|" \
    -e 's|^wrap_up_ms = .*|wrap_up_ms = 0|' \
    -e 's|^max_wait_ms = .*|max_wait_ms = 600000|' \
    config.example.toml >"${config}"
hash="$(sed -n 's/^credential_hash = //p' config.example.toml | head -n 1)"
for i in $(seq 1 "${agents}"); do
  printf '\n[[agent]]\nid = "load-%s"\ncredential_hash = %s\nskills = ["support"]\n' "${i}" "${hash}" >>"${config}"
done
"${gateway}" check-config "${config}" >&2

# READY=1: a notify socket of our own, and the time from exec to the datagram.
python3 - "${work}/notify" "${gateway}" "${config}" "${work}/gateway.log" >"${work}/ready" <<'PY' &
import socket, subprocess, sys, time, os
path, gateway, config, log = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
env = dict(os.environ, NOTIFY_SOCKET=path)
start = time.monotonic()
p = subprocess.Popen([gateway, "run", "--config", config], env=env,
                     stderr=open(log, "w"))
while True:
    msg = s.recv(4096).decode()
    if msg.startswith("READY=1"):
        print(f"ready_ms={(time.monotonic() - start) * 1000:.1f} pid={p.pid}", flush=True)
        break
p.wait()
PY
pids+=("$!")
wait_for() { # FILE PATTERN COUNT SECONDS
  local deadline=$((SECONDS + $4))
  until [[ "$(grep -c -- "$2" "$1" 2>/dev/null || true)" -ge "$3" ]]; do
    if ((SECONDS >= deadline)); then
      echo "timed out waiting for ${3}× '$2' in $1" >&2
      tail -n 20 "$1" >&2
      exit 1
    fi
    sleep 0.2
  done
}
wait_for "${work}/ready" "ready_ms" 1 30
gw_pid="$(sed -n 's/.*pid=//p' "${work}/ready")"
pids+=("${gw_pid}")
fingerprint="$(grep -o 'fingerprint=[0-9A-F:]*' "${work}/gateway.log" | head -n 1 | cut -d= -f2)"

TRUNKGATE_AGENT_CREDENTIAL=demo-secret "${agent}" --gateway 127.0.0.1:4499 --agent load \
  --pin "${fingerprint}" --swarm "${agents}" --auto-answer --echo --duration-secs 120 \
  >"${work}/agents.log" 2>&1 &
pids+=("$!")
wait_for "${work}/agents.log" "state=available" "${agents}" 30

(cd integration-tests/scenarios && sipp -sf uac_queue_speech.xml -i 127.0.0.1 -p 5099 \
  -m "${calls}" -r 50 -l "$((calls + 10))" -timeout 100s -nostdin 127.0.0.1:5090 \
  >"${work}/sipp.log" 2>&1) &
sipp_pid=$!
pids+=("${sipp_pid}")
wait_for "${work}/gateway.log" "bridged to agent" "${agents}" 60
wait_for "${work}/gateway.log" "caller queued" "${calls}" 60

active="$("${gateway}" ctl calls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
scrapes=""
for _ in $(seq 1 10); do
  scrapes+="$(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' http://127.0.0.1:9464/metrics)"$'\n'
done
reload_start="$(date +%s.%N)"
"${gateway}" ctl reload >/dev/null
reload_end="$(date +%s.%N)"
after="$("${gateway}" ctl calls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

cat "${work}/ready"
echo "calls_active=${active} agents=${agents} calls_after_reload=${after}"
printf '%s' "${scrapes}" | awk '{ t += $1; if ($1 > max) max = $1; size = $2 }
  END { printf "scrape_ms_mean=%.2f scrape_ms_max=%.2f scrape_bytes=%d\n", 1000 * t / NR, 1000 * max, size }'
awk -v a="${reload_start}" -v b="${reload_end}" 'BEGIN { printf "reload_ms=%.1f (ctl reload round trip)\n", 1000 * (b - a) }'
