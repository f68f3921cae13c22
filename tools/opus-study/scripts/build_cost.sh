#!/usr/bin/env bash
# What each libopus build costs: clean release builds (1 job, nice) of the study binary with
# libopus 1.3.1 (system, dynamic), 1.6.1 default (opusic-sys, static), 1.6.1 + DRED/deep PLC,
# 1.6.1 + DRED/deep PLC + OSCE. Prints wall time, libopus.a size and stripped binary size.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=1
base=target/buildcost
rm -rf "$base"; mkdir -p "$base"
# Fetch first so download time is not counted.
cargo fetch -q
printf "build\twall_s\tlibopus.a_bytes\tstripped_binary_bytes\n"
for v in lib13 lib16 dred-only dnn; do
  s=$(date +%s.%N)
  nice -n 10 cargo build -q --release --features "$v" --target-dir "$base/$v" 2>/dev/null
  e=$(date +%s.%N)
  lib=$(ls "$base/$v"/release/build/opusic-sys-*/out/lib/libopus.a 2>/dev/null | head -1 || true)
  libsz=$([ -n "$lib" ] && stat -c %s "$lib" || echo "system .so")
  strip -o "$base/$v.stripped" "$base/$v/release/opus-study"
  printf "%s\t%.1f\t%s\t%s\n" "$v" "$(echo "$e - $s" | bc)" "$libsz" "$(stat -c %s "$base/$v.stripped")"
done
rm -rf "$base"/*/release/build "$base"/*/release/deps
