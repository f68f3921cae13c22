#!/usr/bin/env bash
# The bench, in one command on a fresh Debian 12 machine: installs what it needs (the test
# dependencies, and rtpengine-daemon for the side-by-side reference), builds release binaries,
# and runs trunkgate-bench on loopback. Writes target/bench/report.json and report.md.
#
#   scripts/bench.sh                                  # N = 50,100,200,400,600, then setup rates
#   scripts/bench.sh --calls 50,100 --no-setup-rate   # any trunkgate-bench option
#
# It takes 10–20 minutes; see docs/performance.md for the method and the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh
if ! command -v rtpengine >/dev/null; then
  sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends rtpengine-daemon
fi
cargo build --release --locked -p trunkgate -p trunkgate-integration \
  --bin trunkgate --bin trunkgate-agent --bin trunkgate-bench
exec target/release/trunkgate-bench --out target/bench "$@"
