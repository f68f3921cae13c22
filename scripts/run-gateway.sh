#!/usr/bin/env bash
# Builds trunkgate and runs it on its built-in defaults (config.example.toml): SIP on UDP and
# TCP port 5060, calls accepted from loopback, the demo IVR with the prompts in ./prompts.
# Try it:  sipp -sn uac 127.0.0.1:5060 -m 10   or call sip:100@127.0.0.1 from a softphone.
#
#   scripts/run-gateway.sh            (extra arguments go to `trunkgate run`)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cc >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then
  as_root=""
  [[ "$(id -u)" -eq 0 ]] || as_root="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get update
  $as_root apt-get install -y --no-install-recommends build-essential pkg-config ca-certificates
fi

cargo build --release --locked --bin trunkgate
exec target/release/trunkgate run "$@"
