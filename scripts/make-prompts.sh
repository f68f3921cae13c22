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
  "agent-option|Press 0 to speak to an agent."
  "call-recorded|This call may be recorded for quality purposes."
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
  # Queue announcements: "You are caller number | three. | Your estimated wait time is | two |
  # minutes. | Thank you for waiting..." (src/queue/announce.rs puts them together).
  "queue-position|You are caller number"
  "queue-wait|Your estimated wait time is"
  "minute|minute"
  "minutes|minutes"
  "less-than-one-minute|less than a minute"
  "queue-thanks|Thank you for waiting. An agent will be with you shortly."
  "queue-unavailable|We are sorry, no one can take your call right now. Please call again later."
  "number-1|one"
  "number-2|two"
  "number-3|three"
  "number-4|four"
  "number-5|five"
  "number-6|six"
  "number-7|seven"
  "number-8|eight"
  "number-9|nine"
  "number-10|ten"
  "number-11|eleven"
  "number-12|twelve"
  "number-13|thirteen"
  "number-14|fourteen"
  "number-15|fifteen"
  "number-16|sixteen"
  "number-17|seventeen"
  "number-18|eighteen"
  "number-19|nineteen"
  "number-20|twenty"
  "number-30|thirty"
  "number-40|forty"
  "number-50|fifty"
  "number-60|sixty"
  "number-70|seventy"
  "number-80|eighty"
  "number-90|ninety"
)

# Music on hold (moh.wav, looped by the queue): a I-vi-IV-V progression in C, 6 s per chord,
# 24 s in all. Each chord is a soft sine pad (three notes, faded in and out, so the loop point
# sounds like any other chord change) under a plucked arpeggio one octave up, eight notes of
# 0.75 s. Every note lies in 247-784 Hz, inside the telephone band, so nothing is lost to G.711
# or a handset. Softened (low-pass 2.5 kHz: the plucks are bright), given a little reverb and
# peak-normalised to -12 dBFS: background music, quieter than the -3 dBFS announcements that
# interrupt it. Same `sox -R -D` as above, so it too is reproduced byte for byte.
MOH_CHORD_SECONDS=6
MOH_NOTE_SECONDS=0.75
# pad notes|arpeggio notes
MOH_CHORDS=(
  "C4 E4 G4|C5 E5 G5 E5 C5 E5 G5 E5"
  "C4 E4 A4|A4 C5 E5 C5 A4 C5 E5 C5"
  "C4 F4 A4|A4 C5 F5 C5 A4 C5 F5 C5"
  "B3 D4 G4|B4 D5 G5 D5 B4 D5 G5 D5"
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

pads=()
notes=()
for chord in "${MOH_CHORDS[@]}"; do
  pad="${work_dir}/moh-pad-${#pads[@]}.wav"
  synth_args=()
  for note in ${chord%%|*}; do
    synth_args+=(sine "${note}")
  done
  sox -R -D -V1 -n -r 8000 -c 1 -b 16 "${pad}" synth "${MOH_CHORD_SECONDS}" "${synth_args[@]}" \
    remix - fade q 0.8 "${MOH_CHORD_SECONDS}" 1.2
  pads+=("${pad}")
  for note in ${chord#*|}; do
    pluck="${work_dir}/moh-note-${#notes[@]}.wav"
    sox -R -D -V1 -n -r 8000 -c 1 -b 16 "${pluck}" synth "${MOH_NOTE_SECONDS}" pluck "${note}" \
      fade q 0.005 "${MOH_NOTE_SECONDS}" 0.3
    notes+=("${pluck}")
  done
done
sox -R -D -V1 "${pads[@]}" "${work_dir}/moh-pads.wav"
sox -R -D -V1 "${notes[@]}" "${work_dir}/moh-arpeggio.wav"
moh="${out_dir}/moh.wav"
sox -R -D -V1 -m -v 0.6 "${work_dir}/moh-pads.wav" -v 1 "${work_dir}/moh-arpeggio.wav" \
  -c 1 -b 16 -e signed-integer "${moh}" \
  lowpass 2500 reverb 30 trim 0 "$((MOH_CHORD_SECONDS * ${#MOH_CHORDS[@]}))" gain -n -12
printf 'make-prompts: %-12s %5.2f s  (music on hold)\n' "moh" "$(soxi -D "${moh}")"
