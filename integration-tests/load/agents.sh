#!/usr/bin/env bash
# Load: N carrier calls with speech, each answered by a headless agent that echoes it back, all
# on loopback. Reports the gateway's CPU per concurrent bridged call (release build).
#
#   integration-tests/load/agents.sh [CALLS]        # default 50
#
# The gateway runs config.example.toml with the trunk routed straight to queue "support", SIP on
# 127.0.0.1:5090, agents on 127.0.0.1:4499 and CALLS agents load-1 … load-CALLS (the demo
# credential). `trunkgate-agent --swarm CALLS --echo` answers; SIPp sends 28 s of PCMA speech per
# call (scenarios/uac_queue_speech.xml). CPU is Δ(utime+stime) of the gateway process from
# /proc/PID/stat over a 15 s window that starts once every call is bridged; the gateway's own
# per-frame timing (trunkgate_media_frame_work_seconds) is read from its metrics at the end, and
# its RSS with the agents logged in and with the calls up gives the memory per call.
source "$(dirname "$0")/common.sh"
calls="${1:-50}"
window=15
config="${work}/load.toml"
load_config "${config}" "${calls}"

"${gateway}" run --config "${config}" 2>"${work}/gateway.log" &
gw_pid=$!
pids+=("${gw_pid}")
wait_for "${work}/gateway.log" "listening" 1 20
threads_idle="$(awk '/^Threads:/ { print $2 }' "/proc/${gw_pid}/status")"
fingerprint="$(grep -o 'fingerprint=[0-9A-F:]*' "${work}/gateway.log" | head -n 1 | cut -d= -f2)"

TRUNKGATE_AGENT_CREDENTIAL=demo-secret "${agent}" --gateway 127.0.0.1:4499 --agent load \
  --pin "${fingerprint}" --swarm "${calls}" --auto-answer --echo --duration-secs 120 \
  >"${work}/agents.log" 2>&1 &
agent_pid=$!
pids+=("${agent_pid}")
wait_for "${work}/agents.log" "state=available" "${calls}" 30
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# The logins' Argon2 threads (tokio's blocking pool) exit 10 s after their last job; their
# stacks would count as memory of the calls. Wait until they are gone (bounded).
deadline=$((SECONDS + 30))
until [[ "$(awk '/^Threads:/ { print $2 }' "/proc/${gw_pid}/status")" -le "${threads_idle}" ]]; do
  ((SECONDS < deadline)) || break
  sleep 0.5
done
rss_agents="$(rss_kib "${gw_pid}")"

# exec: the pid is sipp's own, so the cleanup stops it (not just a subshell).
(cd integration-tests/scenarios && exec sipp -sf uac_queue_speech.xml -i 127.0.0.1 -p 5099 \
  -m "${calls}" -r 10 -l "$((calls + 10))" -timeout 100s -nostdin 127.0.0.1:5090 \
  >"${work}/sipp.log" 2>&1) &
sipp_pid=$!
pids+=("${sipp_pid}")
wait_for "${work}/gateway.log" "bridged to agent" "${calls}" 60

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
gw_before="$(cpu_ticks "${gw_pid}")"
agent_before="$(cpu_ticks "${agent_pid}")"
sleep "${window}"
gw_after="$(cpu_ticks "${gw_pid}")"
rss_calls="$(rss_kib "${gw_pid}")"
agent_after="$(cpu_ticks "${agent_pid}")"
# What the gateway says a frame of a call costs it (the calls flush their timings every 5 s).
frame_work="$(curl -s http://127.0.0.1:9464/metrics | awk '
  /^trunkgate_media_frame_work_seconds_sum/ { sum = $2 }
  /^trunkgate_media_frame_work_seconds_count/ { count = $2 }
  /^trunkgate_media_frame_work_seconds_bucket\{le="0.0001"\}/ { under = $2 }
  END { if (count > 0) printf "frame_work_us_mean=%.1f frames_under_100us_pct=%.1f frames=%d", 1e6 * sum / count, 100 * under / count, count }')"
active="$(grep -c "bridged to agent" "${work}/gateway.log")"
ended="$(grep -c "call ended" "${work}/gateway.log" || true)"

wait "${sipp_pid}" && sipp_status=0 || sipp_status=$?
awk -v calls="${calls}" -v active="${active}" -v ended="${ended}" -v window="${window}" \
  -v hz="${hz}" -v gw="$((gw_after - gw_before))" -v ag="$((agent_after - agent_before))" \
  -v sipp="${sipp_status}" 'BEGIN {
    gw_pct = 100 * gw / hz / window
    printf "calls=%d bridged=%d ended_in_window=%d window_s=%d\n", calls, active, ended, window
    printf "gateway_cpu_pct_of_one_core=%.1f per_call_pct=%.2f\n", gw_pct, gw_pct / calls
    printf "agent_swarm_cpu_pct_of_one_core=%.1f\n", 100 * ag / hz / window
    printf "sipp_exit=%d\n", sipp
  }'
echo "${frame_work}"
awk -v calls="${calls}" -v a="${rss_agents}" -v b="${rss_calls}" 'BEGIN {
  printf "rss_mib agents_in=%.1f with_calls=%.1f rss_per_call_kib=%.0f\n", a / 1024, b / 1024, (b - a) / calls
}'
