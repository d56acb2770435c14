#!/usr/bin/env bash
# The load benchmark on several servers sharing one PostgreSQL database
# (docs/PERFORMANCE.md, "Several servers on PostgreSQL"): a scratch database,
# SERVERS `serve` processes pinned to one core, the bench (load generator +
# stand-ins) pinned to another, the calls placed on the servers in turn.
#
#   scripts/bench-fleet.sh CALLS DURATION_S [RAMP_S]
#
# TRAFFIC (echo | realistic; default realistic: the model speaks, so the
# transcript is written), PG_ADMIN (default
# postgres://postgres@127.0.0.1:5432/postgres: a user who may create
# databases), SERVERS (2), BIN (target/release/reservoice),
# SERVER_CORE (0), LOAD_CORE (1), PORT (8080: the first server; the next ones
# follow), RT_PORT (8091), TW_PORT (8092). Output: the bench's report; the
# servers' logs in $OUT_DIR/serve-N.log.
set -euo pipefail
calls=${1:?calls}; duration=${2:?duration}; ramp=${3:-10}
bin=${BIN:-target/release/reservoice}
admin=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
servers=${SERVERS:-2}; traffic=${TRAFFIC:-realistic}
server_core=${SERVER_CORE:-0}; load_core=${LOAD_CORE:-1}; port=${PORT:-8080}
rt_port=${RT_PORT:-8091}; tw_port=${TW_PORT:-8092}
out=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$out"
db=reservoice_bench_$$
database_url="${admin%/*}/$db"
psql "$admin" -qc "CREATE DATABASE $db"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
pids=(); urls=(); dirs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "${dirs[@]}"
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT
for n in $(seq 0 $((servers - 1))); do
  p=$((port + n)); data=$(mktemp -d); dirs+=("$data")
  PUBLIC_URL=http://127.0.0.1:$p RESERVOICE_BIND=127.0.0.1:$p DATABASE_URL=$database_url \
  OPENAI_REALTIME_URL=ws://127.0.0.1:$rt_port/v1/realtime OPENAI_API_KEY=bench \
  TWILIO_ACCOUNT_SID=ACbe0c0000000000000000000000000000 TWILIO_AUTH_TOKEN=$token \
  TWILIO_FROM_NUMBER=+12125550100 TWILIO_API_BASE=http://127.0.0.1:$tw_port \
  RESERVOICE_DATA_DIR=$data RUST_LOG=warn \
    taskset -c "$server_core" "$bin" serve >"$out/serve-$n.log" 2>&1 &
  pids+=($!); urls+=("http://127.0.0.1:$p")
done
args=(--server "${urls[0]}")
for u in "${urls[@]:1}"; do args+=(--also-server "$u"); done
for p in "${pids[@]}"; do args+=(--pid "$p"); done
echo "== $servers servers on PostgreSQL: $calls calls, $traffic traffic, ${duration} s after a ${ramp} s ramp (uptime: $(uptime))"
set +e
taskset -c "$load_core" "$bin" bench "${args[@]}" --database "$database_url" --auth-token "$token" --traffic "$traffic" \
  --realtime-port "$rt_port" --twilio-port "$tw_port" \
  --calls "$calls" --duration "$duration" --ramp "$ramp" 2>"$out/bench.err"
status=$?
set -e
echo "server logs: $out/serve-*.log" >&2
exit $status
