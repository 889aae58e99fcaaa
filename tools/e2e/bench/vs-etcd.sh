#!/usr/bin/env bash
# quorate against etcd on this machine: 3-member clusters of each on loopback, both durable
# (fsync), the same closed-loop HTTP load script (../shared/anchors/etcd-cluster/kvload.mjs,
# `httpkv` adapter for quorate, the v3 JSON gateway for etcd), all clients on the leader.
# The two systems are run alternately, REPS times, so both see the same machine noise;
# the summary gives medians and the ratio quorate/etcd.
#
#   tools/e2e/bench/vs-etcd.sh [REPS=2] [DURATION_S=5]      (needs etcd: apt-get install etcd-server etcd-client)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$ROOT/../shared/anchors/etcd-cluster" && pwd)}
REPS=${1:-2} DUR=${2:-5}
S=$(mktemp -d /tmp/quorate-vs-etcd.XXXX)
OUT=$S/results.jsonl
QPIDS=()
command -v etcd >/dev/null || { echo "etcd is not installed (apt-get install etcd-server etcd-client)"; exit 2; }
(cd "$ROOT" && pnpm exec turbo run build --filter=@quorate/node --output-logs=errors-only >/dev/null)

q_start() {
  rm -rf "$S/q"; mkdir -p "$S/q"; QPIDS=()
  for i in 1 2 3; do
    node "$ROOT/apps/node/bin/quorate.js" start --members local:3 --node-id "n$i" \
      --storage.data-dir "$S/q/n$i" --log.level warn >"$S/q/n$i.log" 2>&1 &
    QPIDS+=($!)
  done
  for _ in $(seq 200); do
    for p in 8081 8082 8083; do
      curl -sf "http://127.0.0.1:$p/health" | grep -q '"isLeader":true' && return 0
    done
    sleep 0.1
  done
  echo "quorate: no leader"; exit 1
}
q_stop() { kill -TERM "${QPIDS[@]}" 2>/dev/null || true; wait "${QPIDS[@]}" 2>/dev/null || true; }
trap 'q_stop; "$ANCHORS/etcd-cluster.sh" stop "$S/etcd" >/dev/null 2>&1 || true' EXIT

load() { # system endpoints pids op concurrency
  local target=$1 eps=$2 pids=$3 op=$4 c=$5
  local adapter=etcd; [[ $target == quorate ]] && adapter=httpkv
  node "$ANCHORS/kvload.mjs" --target "$adapter" --endpoints "$eps" --mode leader --op "$op" \
    --concurrency "$c" --warmup 1 --duration "$DUR" --value-size 256 --cpu-pids "$pids" --label "$target" --json \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);r.op=process.argv[1];r.c=+process.argv[2];console.log(JSON.stringify(r))})' "$op" "$c" >>"$OUT"
  tail -1 "$OUT" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(`${r.label.padEnd(8)} ${r.op} c=${String(r.c).padEnd(4)} ${String(Math.round(r.opsPerSec)).padStart(7)} ops/s  p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms  errors ${r.errors}`)})'
}

for rep in $(seq "$REPS"); do
  echo "== rep $rep"
  q_start
  QEPS=http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083
  for c in 1 16 64; do load quorate "$QEPS" "$(IFS=,; echo "${QPIDS[*]}")" put "$c"; done
  load quorate "$QEPS" "$(IFS=,; echo "${QPIDS[*]}")" get 64
  q_stop
  rm -rf "$S/etcd"
  "$ANCHORS/etcd-cluster.sh" start "$S/etcd" 3 >/dev/null
  EEPS=$("$ANCHORS/etcd-cluster.sh" endpoints "$S/etcd")
  EPIDS=$(cat "$S/etcd"/m*.pid | paste -sd,)
  for c in 1 16 64; do load etcd "$EEPS" "$EPIDS" put "$c"; done
  load etcd "$EEPS" "$EPIDS" get 64
  "$ANCHORS/etcd-cluster.sh" stop "$S/etcd" >/dev/null
done

node - "$OUT" <<'JS'
const fs = require('node:fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
// A true median: with an even count, the mean of the two middle values (with 2 reps,
// their mean, not the better one).
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
console.log('\nmedians over the reps; a get of a key never written answers 404 on quorate (counted as an error by the load script) and 200 with no value on etcd');
console.log('| op | clients | quorate ops/s | etcd ops/s | ratio | quorate p50 / p99 ms | etcd p50 / p99 ms | ratio per rep |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [op, c] of [['put', 1], ['put', 16], ['put', 64], ['get', 64]]) {
  const pick = (l) => rows.filter((r) => r.label === l && r.op === op && r.c === c);
  const q = pick('quorate'), e = pick('etcd');
  const qo = med(q.map((r) => r.opsPerSec)), eo = med(e.map((r) => r.opsPerSec));
  const lat = (rs) => `${med(rs.map((r) => r.latencyMs.p50)).toFixed(1)} / ${med(rs.map((r) => r.latencyMs.p99)).toFixed(1)}`;
  const perRep = q.map((r, i) => (e[i] ? (r.opsPerSec / e[i].opsPerSec).toFixed(2) : '?')).join(', ');
  console.log(`| ${op} | ${c} | ${Math.round(qo)} | ${Math.round(eo)} | ${(qo / eo).toFixed(2)} | ${lat(q)} | ${lat(e)} | ${perRep} |`);
}
JS
echo "raw results: $OUT (the scratch directory $S is left for its logs)"
