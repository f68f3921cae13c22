#!/usr/bin/env bash
# Test speech: espeak-ng at its native rate (22050 Hz), three ~10 s segments of three sentences
# each, varied voices and speeds. Writes, under $1 (default target/audio):
#   ref8k.wav   8 kHz mono s16 (narrowband reference and NB encoder input)
#   in16k.wav  16 kHz mono s16 (wideband encoder input)
#   segments.txt  segment lengths in 8 kHz samples (PESQ is scored per segment)
set -euo pipefail
out=${1:-target/audio}
mkdir -p "$out/parts"
cd "$out"
sentences=(
  "en-us+m3|165|Thank you for calling the support line. Your call may be recorded for quality and training."
  "en-gb+f3|150|Please say or enter your eight digit account number, followed by the hash key."
  "en-us+m1|180|I found three appointments next week: Tuesday at nine fifteen, Wednesday at noon, and Friday at four."
  "en-gb+m4|155|The quick brown fox jumps over the lazy dog, while seven sharp jazz musicians quietly watch."
  "en-us+f2|170|Your balance is two hundred and forty six dollars and thirty cents, due on the fifth of June."
  "en-gb-scotland|160|If this is an emergency, hang up and dial the local emergency number straight away."
  "en-us+f4|150|Should I transfer you to billing, technical support, or would you like to leave a message?"
  "en-gb+m2|175|Shipping usually takes two to three working days; express delivery arrives tomorrow morning."
  "en-us+m5|160|Thanks for waiting. An agent will be with you shortly. Please stay on the line."
)
rm -f parts/*.wav segments.txt
seg=0
for i in "${!sentences[@]}"; do
  IFS='|' read -r voice speed text <<<"${sentences[$i]}"
  espeak-ng -v "$voice" -s "$speed" -w "parts/s$i.raw.wav" "$text"
  # 22050 Hz native; 300 ms of silence after each sentence.
  sox -R "parts/s$i.raw.wav" -c 1 "parts/s$i.wav" pad 0 0.3
done
for s in 0 1 2; do
  a=$((s*3)); sox -R "parts/s$a.wav" "parts/s$((a+1)).wav" "parts/s$((a+2)).wav" "parts/seg$s.wav" pad 0.2 0
  sox -R "parts/seg$s.wav" -r 8000 -b 16 -e signed-integer "parts/seg$s.8k.wav" norm -3
  soxi -s "parts/seg$s.8k.wav" >> segments.txt
done
sox -R parts/seg0.wav parts/seg1.wav parts/seg2.wav -r 22050 full.native.wav
# Same level for both rates: normalise the native signal once, then resample.
sox -R full.native.wav full.norm.wav norm -3
sox -R full.norm.wav -r 8000 -b 16 -e signed-integer ref8k.wav
sox -R full.norm.wav -r 16000 -b 16 -e signed-integer in16k.wav
echo "audio: $(soxi -D ref8k.wav) s at 8 kHz, $(soxi -D in16k.wav) s at 16 kHz; segments (8k samples): $(tr '\n' ' ' < segments.txt)"
