#!/usr/bin/env bash
# Generates the IVR prompts in prompts/ with espeak-ng and sox. The WAVs are committed, so this
# only needs to run when a text changes; it documents exactly how each file was made.
#
# Each prompt: espeak-ng (voice en-us, 150 words/min, 22.05 kHz) -> sox -R -D (repeatable, and no
# dither, so the padding is exact digital silence that tests can rely on):
#   rate -v 8000        8 kHz, the rate every G.711 call runs at (no resampling at load time)
#   silence ... reverse silence ... reverse
#                       trim leading and trailing silence below -48 dBFS, so menus chain
#                       without dead air and tests can line recordings up with the reference
#   pad 0.05 0.05       then keep 50 ms of silence at each end, so the first syllable is not
#                       clipped by a jitter buffer filling up
#   gain -n -3          peak-normalise to -3 dBFS: loud enough for G.711, headroom for codecs
# Output: mono, 16-bit signed PCM WAV.
#
#   scripts/make-prompts.sh [OUTPUT_DIR]   # default: <repo>/prompts
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-${repo_root}/prompts}"

for cmd in espeak-ng sox; do
  command -v "${cmd}" >/dev/null 2>&1 || {
    echo "make-prompts: ${cmd} not found (run scripts/setup-test-deps.sh)" >&2
    exit 1
  }
done

VOICE="en-us"
WORDS_PER_MINUTE=150
SILENCE_THRESHOLD="-48d"

# name|text — the name is what config files refer to (prompt NAME is DIR/NAME.wav).
PROMPTS=(
  "welcome|Welcome to trunkgate."
  "main-menu|Press 1 to hear your digits read back. Press 9 to end the call."
  "enter-digits|Enter some digits, then press the pound key."
  "you-entered|You entered"
  "invalid|Sorry, that is not a valid choice."
  "goodbye|Goodbye."
  "digit-0|zero"
  "digit-1|one"
  "digit-2|two"
  "digit-3|three"
  "digit-4|four"
  "digit-5|five"
  "digit-6|six"
  "digit-7|seven"
  "digit-8|eight"
  "digit-9|nine"
  "digit-star|star"
  "digit-pound|pound"
)

mkdir -p "${out_dir}"
work_dir="$(mktemp -d)"
trap 'rm -rf "${work_dir}"' EXIT

echo "make-prompts: $(espeak-ng --version | head -n 1)"
echo "make-prompts: $(sox --version | head -n 1)"

for entry in "${PROMPTS[@]}"; do
  name="${entry%%|*}"
  text="${entry#*|}"
  raw="${work_dir}/${name}.raw.wav"
  out="${out_dir}/${name}.wav"
  espeak-ng -v "${VOICE}" -s "${WORDS_PER_MINUTE}" -w "${raw}" "${text}"
  sox -R -D -V1 "${raw}" -c 1 -b 16 -e signed-integer "${out}" \
    rate -v 8000 \
    silence 1 0.01 "${SILENCE_THRESHOLD}" reverse silence 1 0.01 "${SILENCE_THRESHOLD}" reverse \
    pad 0.05 0.05 \
    gain -n -3
  printf 'make-prompts: %-12s %5.2f s  "%s"\n' "${name}" "$(soxi -D "${out}")" "${text}"
done
