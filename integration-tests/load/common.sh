# Shared by the load scripts (source it): a scratch directory cleaned up on exit with every
# process started into `pids`, release binaries, a gateway config on loopback and bounded waits.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
  local pid deadline
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The gateway of ops.sh is not our child (a helper starts it): wait until it is gone too, so
  # the next run finds its ports free.
  deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  done
  rm -rf "${work}"
}
trap cleanup EXIT

cd "${root}"
cargo build --release --locked --bin trunkgate --bin trunkgate-agent >&2
gateway="${root}/target/release/trunkgate"
agent="${root}/target/release/trunkgate-agent"

# load_config FILE AGENTS: config.example.toml routed straight to queue "support", SIP on
# 127.0.0.1:5090, agents on 127.0.0.1:4499, no wrap-up, no drain (SIGTERM at the end hangs up at
# once), and agents load-1 … load-AGENTS (the demo credential).
load_config() {
  local config="$1" agents="$2" hash i
  sed -e 's|^udp = .*|udp = ["127.0.0.1:5090"]|' \
      -e 's|^tcp = .*|tcp = ["127.0.0.1:5090"]|' \
      -e 's|^route = "ivr:main"|route = "queue:support"|' \
      -e "s|^dir = \"prompts\"|dir = \"${root}/prompts\"|" \
      -e 's|^listen = "0.0.0.0:4433"|listen = "127.0.0.1:4499"|' \
      -e "s|^state_dir = \"state\"|state_dir = \"${work}/state\"|" \
      -e 's|^wrap_up_ms = .*|wrap_up_ms = 0|' \
      -e 's|^max_wait_ms = .*|max_wait_ms = 600000|' \
      -e 's|^drain_timeout_ms = .*|drain_timeout_ms = 0|' \
      config.example.toml >"${config}"
  hash="$(sed -n 's/^credential_hash = //p' config.example.toml | head -n 1)"
  for i in $(seq 1 "${agents}"); do
    printf '\n[[agent]]\nid = "load-%s"\ncredential_hash = %s\nskills = ["support"]\n' "${i}" "${hash}" >>"${config}"
  done
  "${gateway}" check-config "${config}" >&2
}

wait_for() { # FILE PATTERN COUNT SECONDS
  local deadline=$((SECONDS + $4))
  until [[ "$(grep -c -- "$2" "$1" 2>/dev/null || true)" -ge "$3" ]]; do
    if ((SECONDS >= deadline)); then
      echo "timed out waiting for ${3}× '$2' in $1" >&2
      tail -n 20 "$1" >&2
      for log in "${work}"/*.log; do
        [[ "${log}" == "$1" ]] || { echo "== ${log}" >&2; tail -n 8 "${log}" >&2; }
      done
      exit 1
    fi
    sleep 0.2
  done
}
