#!/usr/bin/env bash
# Generate the simulated restaurant host's speech clips (run once; the output is committed).
#
# Output: assets/sim/host/<id>.ulaw = raw G.711 mu-law, 8 kHz, mono, no header,
# exactly the bytes Twilio streams. The program embeds them with include_bytes!,
# so nothing at run time needs espeak-ng or sox.
#
# Needs: espeak-ng, sox  (apt-get install -y espeak-ng sox)
#
# Processing per clip:
#   espeak-ng  en-us (fr for the French host's fr_* clips), 160 wpm,
#              1 x 10 ms word gap  -> 22.05 kHz WAV
#   sox        band-limit to the phone band, cap every internal pause (below 2% of full scale) at 150 ms
#              (so an energy VAD with silence_duration >= 300 ms hears ONE
#              utterance per clip), trim leading/trailing silence, normalise
#              the peak to -4 dBFS (a moderate phone level), resample to 8 kHz
#              and encode mu-law.
set -euo pipefail
cd "$(dirname "$0")/.."
out=assets/sim/host
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# clip ID TEXT [VOICE]  (VOICE: an espeak-ng voice, en-us by default)
clip() {
  local id=$1 text=$2 voice=${3:-en-us}
  espeak-ng -v "$voice" -s 160 -g 1 -w "$tmp/$id.wav" "$text"
  sox "$tmp/$id.wav" -t raw -e mu-law -b 8 -r 8000 -c 1 "$out/$id.ulaw" \
    highpass 250 lowpass 3400 \
    silence -l 1 0.02 2% -1 0.15 2% \
    reverse silence 1 0.02 1% reverse \
    norm -4 \
    rate 8000
  printf '%-16s %6d bytes  %5d ms\n' "$id" "$(stat -c %s "$out/$id.ulaw")" "$(( $(stat -c %s "$out/$id.ulaw") / 8 ))"
}

clip greeting       "Good evening, Chez Demo, how can I help you?"
clip booked_confirm "Let me check. Yes, we have a table at seven. You're all set, your confirmation number is four two one seven."
clip alt_offer      "I'm sorry, seven o'clock is fully booked. The closest I have is seven thirty. Would that work?"
clip alt_confirm    "Perfect, you're booked for seven thirty. See you then."
clip interrupt      "Sorry, how many people was that?"
clip barge_confirm  "Great, a table for four at seven. You're booked. See you then."
clip menu           "Thank you for calling Chez Demo. For opening hours, press one. For reservations, press two."
clip voicemail      "You have reached Chez Demo. We can't take your call right now. Please leave a message after the tone."

# The French restaurant host (the `french` scenario). Numbers are written as
# words so espeak-ng says them as a host would.
clip fr_greeting       "Bonsoir, Chez Demo, je vous écoute." fr
clip fr_booked_confirm "Je regarde. Oui, nous avons une table à dix-neuf heures. C'est noté, votre numéro de confirmation est le quatre deux un sept." fr
