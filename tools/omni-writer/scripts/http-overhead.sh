#!/usr/bin/env bash
# The daemon's sustained rate without --http, with --http and no client, with --http while
# curl scrapes /metrics every 100 ms, and with --http while headless Chromium keeps the
# inspector's log page open with its live tail on (it polls /api/log every second and
# /api/status every 3 s) (BENCHMARKS.md, "Daemon HTTP surface"). Each run writes a fresh store
# under /tmp (removed after) and serves on 127.0.0.1:19464.
# Usage: tools/omni-writer/scripts/http-overhead.sh BINARY durable|buffered RUNS SECS
set -euo pipefail
bin=$1 mode=$2 runs=$3 secs=$4 port=19464
for run in $(seq 1 "$runs"); do
  for variant in off http http+scrape http+browser; do
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
    if [ "$variant" = http+browser ]; then
      until curl -s -o /dev/null "127.0.0.1:$port/health"; do sleep 0.05; done
      chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --user-data-dir="$dir/browser" --remote-debugging-port=0 \
        "http://127.0.0.1:$port/#/log?tail=1" > /dev/null 2>&1 &
      browser=$!
      # The inspector's request counter, read every 2 s: how much the page asked.
      while kill -0 "$daemon" 2> /dev/null; do
        seen=$(curl -s "127.0.0.1:$port/metrics" | awk '/^omni_writer_inspector_requests_total/ {print $2}')
        [ -n "$seen" ] && scrapes=$seen
        sleep 2
      done
      kill "$browser" 2> /dev/null || true
      wait "$browser" 2> /dev/null || true
    fi
    wait "$daemon"
    rate=$(python3 -c "import json,sys; print(int(json.load(open(sys.argv[1]))['events_per_sec']))" "$dir/summary.json")
    echo "$mode run=$run variant=$variant events_per_sec=$rate requests=$scrapes"
    rm -rf "$dir"
  done
done
