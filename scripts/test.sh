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
# compiling: build every target of the workspace once, in the dev profile.
cargo build --workspace --all-targets --locked
cargo nextest run --workspace --locked --profile "$profile"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
