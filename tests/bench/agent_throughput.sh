#!/usr/bin/env bash
# How fast does `demo-app agent` relay spans, on one core, and does its memory stay bounded
# while the upstream is down?
#   1. Throughput: otlp_blast (as fast as it goes) -> agent (pinned to one CPU) -> otlp_light_sink
#      (counts spans without decoding them, so it costs little) for N seconds: spans/s relayed
#      (counted by the sink), the agent's CPU (share of one core) and peak RSS.
#   2. Outage: the sink is stopped; otlp_blast sends at a steady rate for M seconds; the
#      agent's RSS is sampled every second (peak reported against --queue-max-bytes + 30 MiB);
#      refused spans are counted; then the sink comes back and the queue drains.
#
# Usage: tests/bench/agent_throughput.sh [throughput-seconds (20)] [outage-seconds (60)]
#        [steady spans/s during the outage (20000)] [queue bytes (67108864)]
# Env: BLAST_SPANS_PER_REQUEST (200) and BLAST_CALLERS (8) shape the throughput sender.
#      AGENT_BINS="before=/path/demo-app after=/path/other" compares agent binaries side by side
#      instead of building this checkout's: ROUNDS (3) throughput rounds each, interleaved
#      (before, after, before, ...) with a fresh agent per round, then the median spans per
#      CPU-second of each and the ratio of the last to the first. The outage part runs on the
#      last binary only (0 outage seconds skip it).
# Needs: taskset (util-linux), curl, python3. The agent runs on CPU 1, sender and sink on CPU 0
# when the machine has two or more CPUs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tests/bench/lib.sh

seconds=${1:-20}
outage=${2:-60}
steady=${3:-20000}
queue_bytes=${4:-67108864}

agent_cpu=$svc_cpu

echo "== building (release)"
target=${CARGO_TARGET_DIR:-target}
if [ -z "${AGENT_BINS:-}" ]; then
  cargo build --release --locked -q -p demo-app --bin demo-app
  AGENT_BINS="this=$target/release/demo-app"
  rounds=${ROUNDS:-1}
else
  rounds=${ROUNDS:-3}
fi
cargo build --release --locked -q -p testkit --example otlp_light_sink --example otlp_blast
labels=(); bins=()
for pair in $AGENT_BINS; do
  labels+=("${pair%%=*}"); bins+=("${pair#*=}")
  [ -x "${pair#*=}" ] || { echo "AGENT_BINS: ${pair#*=} is not an executable" >&2; exit 2; }
done
sink_bin=$target/release/examples/otlp_light_sink
blast=$target/release/examples/otlp_blast

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
metric() { curl -fs "http://127.0.0.1:$agent_metrics/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s += $NF} END {printf "%d", s}'; }

sink_grpc=$(free_port); sink_http=$(free_port)
start_sink() { $load_cpu "$sink_bin" "$sink_grpc" "$sink_http" & sink_pid=$!; pids+=($sink_pid); wait_http "http://127.0.0.1:$sink_http/count"; }
sink_count() { curl -fs "http://127.0.0.1:$sink_http/count"; }
start_sink

start_agent() {
  agent_grpc=$(free_port); agent_http=$(free_port); agent_metrics=$(free_port)
  RUST_LOG=warn $agent_cpu "$1" agent --grpc-listen "127.0.0.1:$agent_grpc" --http-listen "127.0.0.1:$agent_http" \
    --metrics-listen "127.0.0.1:$agent_metrics" --upstream "127.0.0.1:$sink_grpc" --tenant bench \
    --resource-attribute k8s.cluster.name=lgtm-remote --queue-max-bytes "$queue_bytes" \
    --queue-max-spans 10000000 --retry-max 2s >"$work/agent.log" & agent_pid=$!
  pids+=($agent_pid)
  wait_http "http://127.0.0.1:$agent_metrics/healthz"
}
stop_agent() {
  kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
  local kept=(); for p in "${pids[@]}"; do [ "$p" = "$agent_pid" ] || kept+=("$p"); done; pids=("${kept[@]}")
}

# One throughput round against a fresh agent; appends "label spans-per-cpu-second" to results.
throughput_round() {
  local label=$1 bin=$2
  start_agent "$bin"
  echo "-- $label ($bin), agent pid $agent_pid ($agent_cpu), $(nproc) CPUs on this machine, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  $load_cpu "$blast" "http://127.0.0.1:$agent_grpc" 2 0 >/dev/null  # warm-up: connections, allocator
  before_sink=$(sink_count); before_cpu=$(cpu_ticks $agent_pid); t0=$(date +%s.%N)
  $load_cpu "$blast" "http://127.0.0.1:$agent_grpc" "$seconds" 0 "${BLAST_SPANS_PER_REQUEST:-200}" "${BLAST_CALLERS:-8}" >"$work/blast.json"
  for _ in $(seq 50); do [ "$(metric otelcol_exporter_queue_size)" = 0 ] && break; sleep 0.1; done
  t1=$(date +%s.%N); after_cpu=$(cpu_ticks $agent_pid); after_sink=$(sink_count)
  python3 - "$before_sink" "$after_sink" "$t0" "$t1" "$before_cpu" "$after_cpu" "$clk" "$(hwm_kib $agent_pid)" "$work/blast.json" "$label" >>"$work/results" <<'PY'
import json, sys
b, a, t0, t1, c0, c1, clk, hwm, blast, label = sys.argv[1:]
spans = int(a) - int(b); wall = float(t1) - float(t0); cpu = (int(c1) - int(c0)) / int(clk)
sent = json.load(open(blast))
print(f"   sender: {sent['accepted_per_s']:.0f} spans/s accepted, {sent['refused_spans']} refused, {sent['request_bytes']} bytes per request", file=sys.stderr)
print(f"   relayed: {spans} spans in {wall:.1f}s = {spans / wall:,.0f} spans/s", file=sys.stderr)
print(f"   agent CPU: {cpu:.1f}s = {cpu / wall:.2f} cores; {spans / cpu:,.0f} spans per CPU-second", file=sys.stderr)
print(f"   agent peak RSS: {int(hwm) / 1024:.1f} MiB", file=sys.stderr)
print(label, spans / cpu if cpu > 0 else 0)
PY
}

echo "== 1. throughput: as fast as possible for ${seconds}s, $rounds round(s) per agent binary"
for round in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do
    throughput_round "${labels[$i]}" "${bins[$i]}"
    if [ "$round" != "$rounds" ] || [ "$i" != "$((${#bins[@]} - 1))" ]; then stop_agent; fi
  done
done
python3 - "$work/results" "${labels[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
labels = sys.argv[2:]
medians = {}
for label in labels:
    figures = [float(v) for l, v in rows if l == label]
    medians[label] = statistics.median(figures)
    print(f"   {label}: median {medians[label]:,.0f} spans per CPU-second over {len(figures)} round(s): " + ", ".join(f"{f:,.0f}" for f in figures))
if len(labels) >= 2 and medians[labels[0]] > 0:
    print(f"   ratio {labels[-1]}/{labels[0]}: {medians[labels[-1]] / medians[labels[0]]:.2f}")
PY
[ "$outage" -gt 0 ] || exit 0

echo "== 2. outage: upstream down for ${outage}s, ${steady} spans/s in"
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true
rss_base=$(rss_kib $agent_pid)
$load_cpu "$blast" "http://127.0.0.1:$agent_grpc" "$outage" "$steady" 100 4 >"$work/outage.json" & blast_pid=$!
peak=0
while kill -0 "$blast_pid" 2>/dev/null; do
  r=$(rss_kib $agent_pid); [ "$r" -gt "$peak" ] && peak=$r; sleep 1
done
wait "$blast_pid" || true
queued=$(metric otelcol_exporter_queue_size); refused=$(metric otelcol_receiver_refused_spans_total)
python3 - "$rss_base" "$peak" "$queue_bytes" "$queued" "$refused" "$work/outage.json" "$(metric agent_exporter_queue_size_bytes)" <<'PY'
import json, sys
base, peak, qb, queued, refused, outage, qbytes = sys.argv[1:]
sent = json.load(open(outage))
limit = int(qb) / 2**20 + 30
print(f"   sender: {sent['accepted_spans']} accepted, {sent['refused_spans']} refused (UNAVAILABLE)")
print(f"   agent: {queued} spans / {int(qbytes) / 2**20:.1f} MiB queued, {refused} refused (self-metrics)")
print(f"   agent RSS: {int(base) / 1024:.1f} MiB before, peak {int(peak) / 1024:.1f} MiB during; bound {limit:.0f} MiB (queue {int(qb) / 2**20:.0f} MiB + 30): {'OK' if int(peak) / 1024 <= limit else 'OVER'}")
PY
start_sink
t0=$(date +%s.%N)
for _ in $(seq 600); do [ "$(metric otelcol_exporter_queue_size)" = 0 ] && break; sleep 0.1; done
t1=$(date +%s.%N)
echo "   upstream back: queue drained in $(python3 -c "print(f'{$t1 - $t0:.1f}')")s; sink received $(sink_count) spans; agent sent $(metric otelcol_exporter_sent_spans_total), failed $(metric otelcol_exporter_send_failed_spans_total)"
