#!/usr/bin/env bash
# What does full telemetry cost the demo service? wrk against the app (which calls the db), in
# one run, side by side:
#   (a) full telemetry: 100% sampled spans exported over OTLP/gRPC to a loopback sink, metrics,
#       a JSON log line per request written to a file;
#   (b) the same binary with span export and request logs off.
# Prints requests/s, p50 and p99 of each and the ratio (a)/(b); then, at about 2,000 req/s for
# 30 s with full telemetry, the spans the sink received vs the requests served.
# With BASELINE_BIN=path/to/another/demo-app (e.g. a release build of an earlier commit), adds
#   (c) that binary with full telemetry, in the same interleaved rounds, and the ratio (a)/(c):
# a before/after comparison of one change in one run. DEMO_APP_BIN=path measures that build as
# (a)/(b) instead of building this checkout.
#
# Usage: tests/bench/serve_overhead.sh [seconds-per-run (10)] [connections (32)] [rounds (3)]
# Needs: wrk (apt-get install wrk), taskset (util-linux). Services run on CPU 1, wrk and the
# sink on CPU 0 when the machine has two or more CPUs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tests/bench/lib.sh

duration=${1:-10}
connections=${2:-32}
rounds=${3:-3}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

echo "== building (release)"
# DEMO_APP_BIN=path measures that build instead of building this checkout's.
if [ -z "${DEMO_APP_BIN:-}" ]; then cargo build --release --locked -q -p demo-app --bin demo-app; fi
cargo build --release --locked -q -p testkit --example otlp_light_sink
bin=${DEMO_APP_BIN:-target/release/demo-app}
baseline_bin=${BASELINE_BIN:-}
[ -z "$baseline_bin" ] || [ -x "$baseline_bin" ] || { echo "BASELINE_BIN=$baseline_bin is not an executable" >&2; exit 1; }
sink_bin=target/release/examples/otlp_light_sink


sink_grpc=$(free_port); sink_http=$(free_port)
$load_cpu "$sink_bin" "$sink_grpc" "$sink_http" & pids+=($!)
wait_http "http://127.0.0.1:$sink_http/count"
sink_count() { curl -fs "http://127.0.0.1:$sink_http/count"; }

# start_pair NAME ENV... : starts db and app ($run_bin) with the given env; sets db_pid app_pid app_url
run_bin=$bin
start_pair() {
  local name=$1; shift
  local db_port app_port
  db_port=$(free_port); app_port=$(free_port)
  env "$@" $svc_cpu "$run_bin" serve --role db --listen "127.0.0.1:$db_port" >"$work/$name-db.log" & db_pid=$!
  wait_http "http://127.0.0.1:$db_port/healthz"
  env "$@" $svc_cpu "$run_bin" serve --role app --listen "127.0.0.1:$app_port" \
    --db-url "http://127.0.0.1:$db_port" >"$work/$name-app.log" & app_pid=$!
  pids+=("$db_pid" "$app_pid")
  app_url="http://127.0.0.1:$app_port"
  wait_http "$app_url/readyz"
}
stop_pair() { kill -TERM "$app_pid" "$db_pid"; wait "$app_pid" "$db_pid" 2>/dev/null || true; }

full_env=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_grpc" OTEL_TRACES_SAMPLER=always_on
          OTEL_BSP_MAX_QUEUE_SIZE=65536 DEMO_REQUEST_LOG=true RUST_LOG=info)
bare_env=(OTEL_SDK_DISABLED=true DEMO_REQUEST_LOG=false RUST_LOG=info)

# run_wrk NAME URL : appends "rps p50 p99" of a max-throughput run against URL's list endpoint
run_wrk() {
  $load_cpu wrk -t1 -c"$connections" -d"${duration}s" --latency "$2/api/links?limit=5" >"$work/$1.wrk"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}' "$work/$1.wrk" >>"$work/$1.runs"
}
ms() { awk '{ v = $1; if (v ~ /us$/) v = v / 1000; else if (v ~ /ms$/) v = v + 0; else if (v ~ /s$/) v = v * 1000; print v }'; }
col() { awk -v c="$2" '{ print $c }' "$work/$1.runs" | ms_if "$2" | median; }
ms_if() { if [ "$1" = 1 ]; then cat; else ms; fi; }

echo "== max throughput: wrk -t1 -c$connections -d${duration}s against the app (-> db),"
echo "   (a) and (b) running side by side, measured in turns for $rounds rounds (medians)"
start_pair full "${full_env[@]}"; full_url=$app_url; full_pids=("$db_pid" "$app_pid")
start_pair bare "${bare_env[@]}"; bare_url=$app_url; bare_pids=("$db_pid" "$app_pid")
base_pids=()
if [ -n "$baseline_bin" ]; then
  run_bin=$baseline_bin
  start_pair base "${full_env[@]}"; base_url=$app_url; base_pids=("$db_pid" "$app_pid")
  run_bin=$bin
fi
for round in $(seq "$rounds"); do
  run_wrk full "$full_url"
  run_wrk bare "$bare_url"
  line="   round $round: (a) $(tail -1 "$work/full.runs" | cut -d' ' -f1)  (b) $(tail -1 "$work/bare.runs" | cut -d' ' -f1)"
  if [ -n "$baseline_bin" ]; then
    run_wrk base "$base_url"
    line="$line  (c) $(tail -1 "$work/base.runs" | cut -d' ' -f1)"
  fi
  echo "$line req/s"
done
kill -TERM "${full_pids[@]}" "${bare_pids[@]}" "${base_pids[@]}"
wait "${full_pids[@]}" "${bare_pids[@]}" "${base_pids[@]}" 2>/dev/null || true
full_rps=$(col full 1); bare_rps=$(col bare 1)
printf '%-44s %12s %10s %10s\n' "variant" "req/s" "p50 ms" "p99 ms"
printf '%-44s %12s %10s %10s\n' "(a) full telemetry (spans, metrics, logs)" "$full_rps" "$(col full 2)" "$(col full 3)"
printf '%-44s %12s %10s %10s\n' "(b) export and request logs off" "$bare_rps" "$(col bare 2)" "$(col bare 3)"
awk -v a="$full_rps" -v b="$bare_rps" 'BEGIN { printf "ratio (a)/(b): %.2f (goal >= 0.70)\n", a / b }'
if [ -n "$baseline_bin" ]; then
  base_rps=$(col base 1)
  printf '%-44s %12s %10s %10s\n' "(c) BASELINE_BIN, full telemetry" "$base_rps" "$(col base 2)" "$(col base 3)"
  awk -v a="$full_rps" -v c="$base_rps" 'BEGIN { printf "ratio (a)/(c), this build vs the baseline: %.2f\n", a / c }'
fi
log_lines=$(wc -l <"$work/full-app.log")
echo "request log lines written by the app in (a): $log_lines"

echo "== spans at about 2,000 req/s for 30 s (40 connections, 20 ms apart each)"
cat >"$work/paced.lua" <<'LUA'
function delay() return 20 end
LUA
before=$(sink_count)
start_pair paced "${full_env[@]}"
$load_cpu wrk -t1 -c40 -d30s -s "$work/paced.lua" "$app_url/api/links?limit=5" >"$work/paced.wrk"
sleep 1  # let requests still in flight when wrk stopped finish
served=$(curl -fs "$app_url/metrics" | awk '/^http_server_request_duration_seconds_count\{/ {n += $2} END {print n}')
stop_pair   # SIGTERM flushes the last batch
sleep 1
received=$(( $(sink_count) - before ))
rate=$(awk '/Requests\/sec/ {print $2}' "$work/paced.wrk")
# app server, db client, db server, and the db's store operation (internal span)
spans_per_request=4
expected=$(( served * spans_per_request ))
echo "achieved rate: $rate req/s; requests served: $served"
echo "spans expected ($spans_per_request per request): $expected; received by the sink: $received; lost: $(( expected - received ))"
