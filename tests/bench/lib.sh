# Shared by the benchmark scripts here: `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"` after
# `set -euo pipefail`. Gives:
#   $work              a scratch directory, removed at exit
#   pids+=($!)         processes to kill at exit
#   $svc_cpu $load_cpu taskset prefixes pinning servers to CPU 1 and load to CPU 0 (empty on
#                      one CPU), so the measured process never shares a core with its load
#   free_port          a free TCP port on 127.0.0.1
#   wait_http URL      waits up to 10 s for URL to answer 2xx, else exits
#   median             the median of the numbers on stdin, one per line

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ "$(nproc)" -ge 2 ]; then svc_cpu="taskset -c 1"; load_cpu="taskset -c 0"; else svc_cpu=""; load_cpu=""; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
