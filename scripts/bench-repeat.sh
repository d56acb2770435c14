#!/usr/bin/env bash
# scripts/bench.sh several times in a row (floor, server, floor, server, ...)
# and the median of the rounds' ratios: on a shared VM two identical runs
# minutes apart differ by up to ±8 %, so one round can mislead where a
# median of several does much less (docs/PERFORMANCE.md).
#
#   scripts/bench-repeat.sh ROUNDS CALLS DURATION_S [RAMP_S]
#
# Everything else as scripts/bench.sh (TRAFFIC, BIN, SERVER_BIN, the
# server's settings...). Output: each round's ratio line, then
#   median N calls TRAFFIC over R rounds: server S / floor F CPU-ms per call-minute = X.XXx (rounds: a b c)
set -euo pipefail
rounds=${1:?rounds}; calls=${2:?calls}; duration=${3:?duration}; ramp=${4:-10}
here=$(dirname "$0")
out=${OUT_DIR:-$(mktemp -d)}
traffic=${TRAFFIC:-echo}
status=0
for r in $(seq 1 "$rounds"); do
  set +e
  OUT_DIR="$out/round-$r" ONLY="" "$here/bench.sh" "$calls" "$duration" "$ramp" 2>/dev/null \
    | grep '^ratio' | sed "s/^/round $r: /"
  s=${PIPESTATUS[0]}; [ "$s" -ne 0 ] && status=$s
  set -e
done
# headline lines: the CPU-ms per call-minute of each round's floor and server.
figure() { awk '$1 == "headline" { for (i = 1; i < NF; i++) if ($i == "cpu_ms_per_call_minute") print $(i + 1) }' "$1" 2>/dev/null; }
rows=""
for r in $(seq 1 "$rounds"); do
  f=$(figure "$out/round-$r/floor.txt"); s=$(figure "$out/round-$r/server.txt")
  [ -n "$f" ] && [ -n "$s" ] && rows="$rows$s $f"$'\n'
done
printf '%s' "$rows" | awk -v n="$calls" -v t="$traffic" -v rounds="$rounds" '
  NF == 2 && $2 > 0 { s[++k] = $1; f[k] = $2; x[k] = $1 / $2 }
  END {
    if (k == 0) { print "median: no round gave both figures"; exit 1 }
    # the round whose ratio is the median (the lower one of an even count)
    for (i = 1; i <= k; i++) o[i] = i
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (x[o[j]] < x[o[i]]) { t_ = o[i]; o[i] = o[j]; o[j] = t_ }
    m = o[int((k + 1) / 2)]
    printf "median %s calls %s over %d rounds: server %s / floor %s CPU-ms per call-minute = %.2fx (rounds:", n, t, k, s[m], f[m], x[m]
    for (i = 1; i <= k; i++) printf " %.2fx", x[i]
    printf ")\n"
  }'
echo "logs: $out" >&2
exit $status
