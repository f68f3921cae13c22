#!/usr/bin/env bash
# A shift start: AGENTS agents log in at once (one swarm process, every login in flight
# together), then log out. Reports the gateway's RSS idle, at its peak during the storm, once
# every agent is in, and after they have gone, and how long the storm took (release build).
#
#   integration-tests/load/logins.sh [AGENTS]       # default 500
#
# Each login verifies an Argon2id hash (19 MiB, tens of ms of a core); the gateway runs a few
# at a time (agent::login::Verifier). The gateway runs config.example.toml on loopback with
# agents load-1 … load-AGENTS (the demo credential).
source "$(dirname "$0")/common.sh"
agents="${1:-500}"
config="${work}/load.toml"
load_config "${config}" "${agents}"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

"${gateway}" run --config "${config}" 2>"${work}/gateway.log" &
gw_pid=$!
pids+=("${gw_pid}")
wait_for "${work}/gateway.log" "listening" 1 20
fingerprint="$(grep -o 'fingerprint=[0-9A-F:]*' "${work}/gateway.log" | head -n 1 | cut -d= -f2)"
idle="$(rss_kib "${gw_pid}")"

start="$(date +%s.%N)"
TRUNKGATE_AGENT_CREDENTIAL=demo-secret "${agent}" --gateway 127.0.0.1:4499 --agent load \
  --pin "${fingerprint}" --swarm "${agents}" --duration-secs 300 \
  >"${work}/agents.log" 2>&1 &
agent_pid=$!
pids+=("${agent_pid}")
# Peak RSS while the logins run: sampled every 50 ms until every agent is in (bounded).
peak="${idle}"
deadline=$((SECONDS + 120))
until [[ "$(grep -c "state=available" "${work}/agents.log" 2>/dev/null || true)" -ge "${agents}" ]]; do
  if ((SECONDS >= deadline)); then
    echo "timed out: $(grep -c "state=available" "${work}/agents.log" || true) of ${agents} agents in" >&2
    echo "rss_mib idle=$((idle / 1024)) peak=$((peak / 1024)) now=$(($(rss_kib "${gw_pid}") / 1024))" >&2
    grep -o "event=exit.*" "${work}/agents.log" | sort | uniq -c | head -n 5 >&2
    exit 1
  fi
  now="$(rss_kib "${gw_pid}")"
  ((now > peak)) && peak="${now}"
  sleep 0.05
done
end="$(date +%s.%N)"
logged_in="$(rss_kib "${gw_pid}")"

kill -INT "${agent_pid}"
wait "${agent_pid}" || true
# Gone when the admin API lists no agent (a session lost without a logout waits out its grace).
deadline=$((SECONDS + 60))
until [[ "$("${gateway}" ctl agents --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" == 0 ]]; do
  ((SECONDS < deadline)) || { echo "agents still logged in after 60 s" >&2; exit 1; }
  sleep 0.5
done
after="$(rss_kib "${gw_pid}")"

awk -v n="${agents}" -v a="${start}" -v b="${end}" -v idle="${idle}" -v peak="${peak}" \
  -v in_="${logged_in}" -v after="${after}" 'BEGIN {
    printf "agents=%d storm_s=%.2f logins_per_s=%.0f\n", n, b - a, n / (b - a)
    printf "rss_mib idle=%.1f peak=%.1f all_logged_in=%.1f after_logout=%.1f\n", idle / 1024, peak / 1024, in_ / 1024, after / 1024
  }'
