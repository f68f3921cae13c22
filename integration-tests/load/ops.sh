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
source "$(dirname "$0")/common.sh"
calls="${1:-200}"
agents="${2:-50}"
config="${work}/load.toml"
load_config "${config}" "${agents}"

# READY=1: a notify socket of our own, and the time from exec to the datagram.
python3 - "${work}/notify" "${gateway}" "${config}" "${work}/gateway.log" >"${work}/ready" <<'PY' &
import signal, socket, subprocess, sys, time, os
path, gateway, config, log = sys.argv[1:]
# Stopped before READY (the wait timed out): the gateway goes too.
signal.signal(signal.SIGTERM, lambda *_: (p.kill(), sys.exit(1)))
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
wait_for "${work}/ready" "ready_ms" 1 30
gw_pid="$(sed -n 's/.*pid=//p' "${work}/ready")"
pids+=("${gw_pid}")
fingerprint="$(grep -o 'fingerprint=[0-9A-F:]*' "${work}/gateway.log" | head -n 1 | cut -d= -f2)"

TRUNKGATE_AGENT_CREDENTIAL=demo-secret "${agent}" --gateway 127.0.0.1:4499 --agent load \
  --pin "${fingerprint}" --swarm "${agents}" --auto-answer --echo --duration-secs 120 \
  >"${work}/agents.log" 2>&1 &
pids+=("$!")
wait_for "${work}/agents.log" "state=available" "${agents}" 30

# exec: the pid is sipp's own, so the cleanup stops it (not just a subshell).
(cd integration-tests/scenarios && exec sipp -sf uac_queue_speech.xml -i 127.0.0.1 -p 5099 \
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
