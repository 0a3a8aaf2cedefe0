#!/usr/bin/env bash
# The daemon's sustained rate without --http, with --http and no client, and with --http while
# curl scrapes /metrics every 100 ms (BENCHMARKS.md, "Daemon HTTP surface"). Each run writes a
# fresh store under /tmp (removed after) and serves on 127.0.0.1:19464.
# Usage: tools/omni-writer/scripts/http-overhead.sh BINARY durable|buffered RUNS SECS
set -euo pipefail
bin=$1 mode=$2 runs=$3 secs=$4 port=19464
for run in $(seq 1 "$runs"); do
  for variant in off http http+scrape; do
    dir=$(mktemp -d /tmp/owbench.XXXXXX)
    args=(--store "$dir/store" --durability "$mode" --seed 7 --duration "$secs" --json)
    [ "$variant" != off ] && args+=(--http "127.0.0.1:$port")
    "$bin" "${args[@]}" > "$dir/summary.json" 2> "$dir/stderr" &
    daemon=$!
    scrapes=0
    if [ "$variant" = http+scrape ]; then
      until curl -s -o /dev/null "127.0.0.1:$port/health"; do sleep 0.05; done
      while kill -0 "$daemon" 2> /dev/null; do
        curl -s -o /dev/null "127.0.0.1:$port/metrics" && scrapes=$((scrapes + 1))
        sleep 0.1
      done
    fi
    wait "$daemon"
    rate=$(python3 -c "import json,sys; print(int(json.load(open(sys.argv[1]))['events_per_sec']))" "$dir/summary.json")
    echo "$mode run=$run variant=$variant events_per_sec=$rate scrapes=$scrapes"
    rm -rf "$dir"
  done
done
