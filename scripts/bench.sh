#!/usr/bin/env bash
# Run the load benchmark as docs/PERFORMANCE.md describes: the floor, then
# the server, back to back in one invocation, each pinned to one core with
# the bench (load generator + stand-ins) on another; then the ratio.
#
#   scripts/bench.sh CALLS DURATION_S [RAMP_S]
#
# TRAFFIC (echo | realistic; default echo), ONLY (floor | server: run one),
# BIN (default target/release/reservoice), SERVER_BIN (the server's binary,
# default BIN: to compare two builds under the same load), SERVER_CORE (0), LOAD_CORE (1),
# PORT (8080), RT_PORT (8091), TW_PORT (8092), FLOOR_PORT (8093), OUT_DIR.
# The server's own settings pass through the environment
# (e.g. RESERVOICE_APPEND_MS=60 RESERVOICE_MARK_MS=200).
# Output: both reports, then one line per figure: server, floor, ratio.
set -euo pipefail
calls=${1:?calls}; duration=${2:?duration}; ramp=${3:-10}
bin=${BIN:-target/release/reservoice}
server_bin=${SERVER_BIN:-$bin}
traffic=${TRAFFIC:-echo}; only=${ONLY:-}
server_core=${SERVER_CORE:-0}; load_core=${LOAD_CORE:-1}; port=${PORT:-8080}
rt_port=${RT_PORT:-8091}; tw_port=${TW_PORT:-8092}; floor_port=${FLOOR_PORT:-8093}
out=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$out"
children=()
data=""
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  [ -n "$data" ] && rm -rf "$data"
}
trap cleanup EXIT
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for_port() {
  for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}
status=0

if [ "$only" != server ]; then
  echo "== floor: $calls calls, $traffic traffic, ${duration} s after a ${ramp} s ramp (uptime: $(uptime))"
  taskset -c "$server_core" "$bin" bench --serve-floor "$floor_port" --traffic "$traffic" \
    >"$out/floor.log" 2>&1 &
  floor=$!; children+=("$floor")
  wait_for_port "$floor_port"
  set +e
  taskset -c "$load_core" "$bin" bench --floor --floor-port "$floor_port" --traffic "$traffic" \
    --pid "$floor" --calls "$calls" --duration "$duration" --ramp "$ramp" \
    2>"$out/bench-floor.err" | tee "$out/floor.txt"
  s=${PIPESTATUS[0]}; [ "$s" -ne 0 ] && status=$s
  set -e
  kill "$floor" 2>/dev/null || true; wait "$floor" 2>/dev/null || true
fi

if [ "$only" != floor ]; then
  echo "== server: $calls calls, $traffic traffic, ${duration} s after a ${ramp} s ramp (uptime: $(uptime))"
  token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  data=$(mktemp -d)
  PUBLIC_URL=http://127.0.0.1:$port RESERVOICE_BIND=127.0.0.1:$port \
  OPENAI_REALTIME_URL=ws://127.0.0.1:$rt_port/v1/realtime OPENAI_API_KEY=bench \
  TWILIO_ACCOUNT_SID=ACbe0c0000000000000000000000000000 TWILIO_AUTH_TOKEN=$token \
  TWILIO_FROM_NUMBER=+12125550100 TWILIO_API_BASE=http://127.0.0.1:$tw_port \
  RESERVOICE_DATA_DIR=$data RUST_LOG=${SERVER_LOG:-warn} \
    taskset -c "$server_core" "$server_bin" serve >"$out/serve.log" 2>&1 &
  server=$!; children+=("$server")
  set +e
  taskset -c "$load_core" "$bin" bench --server "http://127.0.0.1:$port" --auth-token "$token" \
    --realtime-port "$rt_port" --twilio-port "$tw_port" --traffic "$traffic" \
    --pid "$server" --calls "$calls" --duration "$duration" --ramp "$ramp" \
    2>"$out/bench-server.err" | tee "$out/server.txt"
  s=${PIPESTATUS[0]}; [ "$s" -ne 0 ] && status=$s
  set -e
fi

# headline MODE N calls TRAFFIC cpu_ms_per_call_minute X p99_ms Y
figure() { awk -v f="$2" '$1 == "headline" { for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }' "$1" 2>/dev/null; }
if [ -z "$only" ]; then
  fc=$(figure "$out/floor.txt" cpu_ms_per_call_minute); sc=$(figure "$out/server.txt" cpu_ms_per_call_minute)
  fp=$(figure "$out/floor.txt" p99_ms); sp=$(figure "$out/server.txt" p99_ms)
  awk -v n="$calls" -v t="$traffic" -v fc="$fc" -v sc="$sc" -v fp="$fp" -v sp="$sp" 'BEGIN {
    printf "ratio %s calls %s: server %s / floor %s CPU-ms per call-minute = ", n, t, sc, fc
    if (fc + 0 > 0 && sc != "?") printf "%.2fx", sc / fc; else printf "?"
    printf "; p99 server %s ms, floor %s ms (%+.2f ms)\n", sp, fp, sp - fp
  }'
fi
echo "logs: $out" >&2
exit $status
