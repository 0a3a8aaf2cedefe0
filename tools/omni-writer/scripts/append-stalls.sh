#!/usr/bin/env bash
# Appends slower than 0.1 s (and 0.4 s) in a durable daemon run of SECS seconds, from the
# daemon's own append-latency histogram (BENCHMARKS.md, "Index persistence in batches").
# Usage: tools/omni-writer/scripts/append-stalls.sh BINARY SECS
bin=$1 secs=$2 port=19511
dir=$(mktemp -d /tmp/stall.XXXXXX)
"$bin" --store "$dir/store" --durability durable --seed 7 --duration "$secs" --json --http 127.0.0.1:$port > "$dir/summary.json" 2> "$dir/stderr" &
d=$!
until curl -s -o /dev/null 127.0.0.1:$port/health; do sleep 0.05; done
last=""
while kill -0 $d 2>/dev/null; do t=$(curl -s 127.0.0.1:$port/metrics); [ -n "$t" ] && last=$t; sleep 0.5; done
wait $d
echo "$last" | python3 -c '
import sys,re
total=None; b={}
for l in sys.stdin:
    m=re.match(r"omni_writer_append_duration_seconds_bucket\{le=\"([^\"]+)\"\} (\d+)",l)
    if m: b[m.group(1)]=int(m.group(2))
    m=re.match(r"omni_writer_append_duration_seconds_count (\d+)",l)
    if m: total=int(m.group(1))
le=[k for k in b if k!="+Inf" and abs(float(k)-0.1024)<1e-6][0]
print("appends", total, "over_0.1s", total-b[le], "over_0.4s", total-b[[k for k in b if k!="+Inf" and abs(float(k)-0.4096)<1e-6][0]])
'
python3 -c "import json; print('events_per_sec', json.load(open('$dir/summary.json'))['events_per_sec'])"
rm -rf "$dir"
