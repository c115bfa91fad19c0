#!/usr/bin/env bash
# How good a load generator is `demo-app loadgen`? Against the same `demo-app serve --role db`
# (export and request logs off), in one run:
#   (a) maximum throughput: loadgen --rate max vs wrk vs oha, same connections and duration,
#       as a ratio to wrk, with the CPU each generator spent per request;
#   (b) accuracy: achieved vs target rate at 1,000 and 5,000 req/s, and the reported p99.
#
# Usage: tests/bench/loadgen_vs_peers.sh [seconds (10)] [connections (64)] [rounds (3)]
# Needs: wrk (apt-get install wrk); oha (cargo install oha --locked) is optional.
# With two or more CPUs the db runs on CPU 1 and each load generator on CPU 0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tests/bench/lib.sh

seconds=${1:-10}
connections=${2:-64}
rounds=${3:-3}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
oha_bin=$(command -v oha || true)
[ -n "$oha_bin" ] || echo "(oha not found: cargo install oha --locked; skipping it)"
gen_cpu=$load_cpu

echo "== building (release)"
cargo build --release --locked -q -p demo-app --bin demo-app
bin=target/release/demo-app

port=$(free_port)
OTEL_SDK_DISABLED=true DEMO_REQUEST_LOG=false $svc_cpu "$bin" serve --role db \
  --listen "127.0.0.1:$port" >"$work/db.log" & pids+=($!)
wait_http "http://127.0.0.1:$port/healthz"
url="http://127.0.0.1:$port/links?limit=20"

# timed NAME CMD... : runs CMD on the generator CPU; stdout to $work/NAME.out, "user sys" CPU
# seconds to $work/NAME.cpu
timed() {
  local name=$1; shift
  { TIMEFORMAT='%U %S'; time $gen_cpu "$@" >"$work/$name.out" 2>"$work/$name.err"; } 2>"$work/$name.cpu"
}
cpu_us_per_req() { awk -v n="$2" '{ printf "%.1f", ($1 + $2) * 1e6 / (n > 0 ? n : 1) }' "$work/$1.cpu"; }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

echo "== (a) maximum throughput against the db: ${connections} connections, ${seconds}s each,"
echo "   generators interleaved for $rounds rounds (medians), so machine noise hits all alike"
: >"$work/wrk.rps"; : >"$work/oha.rps"; : >"$work/lg.rps"
: >"$work/wrk.cpr"; : >"$work/oha.cpr"; : >"$work/lg.cpr"
export OTEL_SDK_DISABLED=true
for round in $(seq "$rounds"); do
  timed wrk wrk -t1 -c"$connections" -d"${seconds}s" "$url"
  awk '/Requests\/sec/ {print $2}' "$work/wrk.out" >>"$work/wrk.rps"
  cpu_us_per_req wrk "$(awk '/requests in/ {print $1}' "$work/wrk.out")" >>"$work/wrk.cpr"; echo >>"$work/wrk.cpr"
  if [ -n "$oha_bin" ]; then
    timed oha "$oha_bin" -c "$connections" -z "${seconds}s" --no-tui --output-format json "$url"
    json "$work/oha.out" "round(d['summary']['requestsPerSec'], 1)" >>"$work/oha.rps"
    cpu_us_per_req oha "$(json "$work/oha.out" "sum(d['statusCodeDistribution'].values())")" >>"$work/oha.cpr"; echo >>"$work/oha.cpr"
  fi
  timed loadgen_max "$bin" loadgen --target "http://127.0.0.1:$port" --api-prefix '' --mix list=1 \
    --rate max --connections "$connections" --duration "${seconds}s" --output json
  json "$work/loadgen_max.out" "d['rate']['achieved']" >>"$work/lg.rps"
  cpu_us_per_req loadgen_max "$(json "$work/loadgen_max.out" "d['requests']['completed']")" >>"$work/lg.cpr"; echo >>"$work/lg.cpr"
  echo "   round $round: wrk $(tail -1 "$work/wrk.rps")  oha $(tail -1 "$work/oha.rps" 2>/dev/null)  loadgen $(tail -1 "$work/lg.rps") req/s"
done
wrk_rps=$(median <"$work/wrk.rps")
printf '%-22s %12s %10s %16s\n' generator "median req/s" "vs wrk" "CPU µs/request"
row() { printf '%-22s %12s %10s %16s\n' "$1" "$(median <"$2")" \
  "$(awk -v a="$(median <"$2")" -v b="$wrk_rps" 'BEGIN { printf "%.2f", a / b }')" "$(median <"$3")"; }
row wrk "$work/wrk.rps" "$work/wrk.cpr"
[ -n "$oha_bin" ] && row oha "$work/oha.rps" "$work/oha.cpr"
row "loadgen --rate max" "$work/lg.rps" "$work/lg.cpr"
echo "goal: loadgen >= 0.90 of wrk"

echo "== (b) accuracy: open loop for ${seconds}s at a fixed rate"
printf '%-10s %12s %10s %10s %10s %16s\n' target achieved "error" missed p99 "CPU µs/request"
for rate in 1000 5000; do
  timed "loadgen_$rate" "$bin" loadgen --target "http://127.0.0.1:$port" --api-prefix '' --mix list=1 \
    --rate "$rate" --duration "${seconds}s" --output json
  f="$work/loadgen_$rate.out"
  achieved=$(json "$f" "d['rate']['achieved']")
  printf '%-10s %12s %9s%% %10s %10s %16s\n' "$rate" "$achieved" \
    "$(awk -v a="$achieved" -v t="$rate" 'BEGIN { printf "%+.2f", (a - t) * 100 / t }')" \
    "$(json "$f" "d['requests']['missed']")" "$(json "$f" "'%.2fms' % d['latency_ms']['p99']")" \
    "$(cpu_us_per_req "loadgen_$rate" "$(json "$f" "d['requests']['completed']")")"
done
echo "goal: achieved within 1% of target whenever the db keeps up (no missed sends)"
