#!/usr/bin/env bash
# opus-study: one command for the whole study. Prints the tables and writes them to
# tools/opus-study/target/results.md.
#
#   bash tools/opus-study/run.sh            # everything (≈ 15 min on 2 cores)
#   STEPS="quality" bash tools/opus-study/run.sh   # a subset: build audio grid quality bench
#   REPS=5 (bench passes), OPUS_STUDY_CONFIGS=a,b (config filter)
#
# Builds with nice -n 10 and CARGO_BUILD_JOBS=1, and runs everything under nice: the machine is
# shared with real-time tests. Needs cargo, cmake, espeak-ng, sox, python3 (+ venv for pesq).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export CARGO_BUILD_JOBS=1
STEPS=${STEPS:-"build audio grid quality bench"}
REPS=${REPS:-5}
T=target
mkdir -p "$T/logs"
has() { [[ " $STEPS " == *" $1 "* ]]; }

for tool in cargo cmake espeak-ng sox python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install --no-install-recommends cmake espeak-ng sox python3-venv)"; exit 1; }
done

# PESQ: the gateway's venv if it has pesq + numpy, else our own.
PY=/work/main/target/pesq-venv/bin/python
if ! { [ -x "$PY" ] && "$PY" -c "import pesq, numpy" 2>/dev/null; }; then
  PY="$T/venv/bin/python"
  if ! { [ -x "$PY" ] && "$PY" -c "import pesq, numpy" 2>/dev/null; }; then
    python3 -m venv "$T/venv"
    "$T/venv/bin/pip" install -q pesq numpy
  fi
fi

if has build; then
  for v in lib13 lib16 dnn; do
    echo "== build $v"
    nice -n 10 cargo build -q --release --features "$v" --target-dir "$T/$v"
  done
fi
B13="$T/lib13/release/opus-study"
B16="$T/lib16/release/opus-study"
BDNN="$T/dnn/release/opus-study"
run() { nice -n 10 "$@"; }

if has audio || [ ! -f "$T/audio/ref8k.wav" ]; then
  bash scripts/gen_audio.sh "$T/audio"
fi

out="$T/results.md"
{
  echo "# opus-study results ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "Libraries: $($B13 info); $($B16 info); $($BDNN info)"
  echo
  echo "### Loss traces (2695 packets of 20 ms, per seed)"
  echo
  echo '```'
  "$B16" traces 2695 | column -t
  echo '```'
} > "$out.head"

if has grid; then
  echo "== clean-channel grid"
  rm -rf "$T/grid"
  run "$B13" grid "$T/audio" "$T/grid"
  run "$B16" grid "$T/audio" "$T/grid"
  run "$PY" scripts/score_grid.py "$T/audio" "$T/grid" > "$T/grid.md"
fi

if has quality; then
  echo "== quality runs"
  rm -f "$T"/quality/manifest-*.tsv "$T"/quality/configs-*.tsv
  run "$B13" quality "$T/audio" "$T/quality"
  run "$B16" quality "$T/audio" "$T/quality"
  run "$BDNN" quality "$T/audio" "$T/quality"
  echo "== PESQ"
  run "$PY" scripts/score.py "$T/audio" "$T/quality" > "$T/quality.md"
  echo "== build digests (does compiling the DNN code in change classic 1.6 output?)"
  { echo; echo "### Build digests (packets; decoded output, rand10 seed 1, decoder complexity 0)"; echo; echo '```';
    "$B16" hashes "$T/audio"; "$BDNN" hashes "$T/audio"; echo '```'; } > "$T/hashes.md"
fi

if has bench; then
  echo "== CPU bench (REPS=$REPS)"
  {
    echo
    echo "### CPU per 20 ms frame (µs, wall clock, 1 thread, nice 10; plc/fec/dred per event over all lossy traces)"
    echo
    for b in "$B13" "$B16" "$BDNN"; do
      echo '```'
      run "$b" bench "$T/audio" "$REPS" | column -t -s $'\t'
      echo '```'
    done
    echo
    echo "### DRED vs encoder complexity"
    echo
    echo '```'
    run "$BDNN" dredcx "$T/audio" | column -t -s $'\t'
    echo '```'
  } > "$T/bench.md"
fi

cat "$out.head" $(ls "$T"/grid.md "$T"/quality.md "$T"/hashes.md "$T"/bench.md 2>/dev/null) > "$out"
cat "$out"
echo
echo "(written to $here/$out)"
