#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for trunkgate's tests and runs every one of them:
# unit and property tests of the cores, and the integration tests that start the real daemon
# and drive it with SIPp and baresip.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh

profile=default
if [[ "${CI:-}" == "true" ]]; then
  profile=ci
fi

# The integration tests run the daemon binary, and benches and fuzz-free targets must keep
# compiling: build every target of the workspace once, in the dev profile. The integration-tests
# crate depends on trunkgate with the `sound` feature, so every workspace command here (build,
# nextest, clippy) has the same feature set: trunkgate-agent gets --sound, its tests run, and
# nothing is built twice.
cargo build --workspace --all-targets --locked
cargo nextest run --workspace --locked --profile "$profile"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The agent client without the `sound` feature (the default for `cargo build`/`cargo install`)
# must keep compiling cleanly too: a check of the one package, not a second build.
cargo clippy -p trunkgate --all-targets --locked -- -D warnings
# Packages: the .deb and .rpm from release binaries, checked (contents, conffile, lintian); as
# root also installed, checked (user, unit, config) and purged.
if [[ "$(id -u)" -eq 0 ]]; then
  scripts/package.sh --install
else
  scripts/package.sh
fi
# A short load run through the release gateway just packaged: 300 agents logging in at once,
# 30 calls bridged to agents that reflect their audio for 20 s, then 100 call setups into the
# IVR. Correctness only, no timing thresholds: every agent in, every call set up, its own speech
# back on every call, no frame concealed, nothing lost to the carrier, every call torn down,
# the report written (target/bench-ci).
# scripts/bench.sh is the full bench.
TRUNKGATE_BIN="${PWD}/target/release/trunkgate" target/debug/trunkgate-bench --check \
  --login-storm 300 --calls 30 --window-secs 20 --no-rtpengine --setup-rates 50 --setup-secs 2 \
  --out target/bench-ci
