#!/usr/bin/env bash
# Run the load benchmark as docs/PERFORMANCE.md describes: the server pinned
# to one core, the bench (load generator + stand-ins) to another.
#
#   scripts/bench.sh CALLS DURATION_S [RAMP_S]        server run
#   FLOOR=1 scripts/bench.sh CALLS DURATION_S [RAMP_S] floor run (no server)
#
# BIN (default target/release/reservoice), SERVER_CORE (0), LOAD_CORE (1),
# PORT (8080), RT_PORT (8091), TW_PORT (8092). Output: the bench's report; the server log in $OUT_DIR/serve.log.
set -euo pipefail
calls=${1:?calls}; duration=${2:?duration}; ramp=${3:-10}
bin=${BIN:-target/release/reservoice}
server_core=${SERVER_CORE:-0}; load_core=${LOAD_CORE:-1}; port=${PORT:-8080}
rt_port=${RT_PORT:-8091}; tw_port=${TW_PORT:-8092}
out=${OUT_DIR:-$(mktemp -d)}
if [ "${FLOOR:-0}" = 1 ]; then
  exec taskset -c "$load_core" "$bin" bench --floor --calls "$calls" --duration "$duration" --ramp "$ramp"
fi
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
data=$(mktemp -d)
PUBLIC_URL=http://127.0.0.1:$port RESERVOICE_BIND=127.0.0.1:$port \
OPENAI_REALTIME_URL=ws://127.0.0.1:$rt_port/v1/realtime OPENAI_API_KEY=bench \
TWILIO_ACCOUNT_SID=ACbe0c0000000000000000000000000000 TWILIO_AUTH_TOKEN=$token \
TWILIO_FROM_NUMBER=+12125550100 TWILIO_API_BASE=http://127.0.0.1:$tw_port \
RESERVOICE_DATA_DIR=$data RUST_LOG=warn \
  taskset -c "$server_core" "$bin" serve >"$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
set +e
taskset -c "$load_core" "$bin" bench --server "http://127.0.0.1:$port" --auth-token "$token" \
  --realtime-port "$rt_port" --twilio-port "$tw_port" \
  --pid "$server" --calls "$calls" --duration "$duration" --ramp "$ramp" 2>"$out/bench.err"
status=$?
set -e
echo "server log: $out/serve.log" >&2
exit $status
