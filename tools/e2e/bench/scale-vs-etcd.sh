#!/usr/bin/env bash
# How write throughput scales with cluster size, quorate beside etcd: 256 B puts at 64
# clients against clusters of 3, 5 and 7 members on loopback (fsync on, defaults), each
# system with its best client (quorate-loadgen --wire binary, no history file as etcd's tool keeps none; etcd's gRPC
# anchor). Per size the two systems alternate, REPS times; the summary gives each size's
# median and its fraction of the 3-member figure.
#
#   pnpm bench:scale-vs-etcd [-- REPS DURATION_S]      (default 1 repetition of 10 s runs; after pnpm bench:vs-etcd has installed etcd)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$ROOT/../shared/anchors" && pwd)}
[[ ${1:-} == -- ]] && shift
REPS=${1:-1} DUR=${2:-10} SIZES=${SIZES:-3 5 7} CLIENTS=${CLIENTS:-64}
S=$(mktemp -d /tmp/quorate-scale.XXXX)
OUT=$S/results.jsonl
PIDS=()
export ETCDCTL_API=3
command -v etcd >/dev/null && command -v go >/dev/null || { echo "run pnpm bench:vs-etcd first (it installs etcd and Go)" >&2; exit 2; }
BIN=$S/etcd-grpc-load
mkdir -p "$S/gopath"
(cd "$ANCHORS/etcd-grpc-load" && GO111MODULE=off GOFLAGS= GOPATH="$S/gopath:/usr/share/gocode" go build -o "$BIN" .)
(cd "$ROOT" && pnpm exec turbo run build --filter=@quorate/node --filter=@quorate/loadgen --output-logs=errors-only >/dev/null)

stop_all() { kill -TERM "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; PIDS=(); }
trap 'stop_all; rm -rf "$S/q" "$S/e"' EXIT

quorate_run() { # size rep
  local n=$1 eps="" i
  rm -rf "$S/q"; mkdir -p "$S/q"
  for ((i = 1; i <= n; i++)); do
    node "$ROOT/apps/node/bin/quorate.js" start --members "local:$n" --node-id "n$i" \
      --storage.data-dir "$S/q/n$i" --log.level warn >"$S/q/n$i.log" 2>&1 &
    PIDS+=($!)
    eps+="${eps:+,}http://127.0.0.1:$((8080 + i))"
  done
  local up=0
  for _ in $(seq 300); do
    for ((i = 1; i <= n; i++)); do
      curl -sf "http://127.0.0.1:$((8080 + i))/health" | grep -q '"isLeader":true' && up=1
    done
    ((up)) && break
    sleep 0.1
  done
  ((up)) || { echo "quorate: no leader with $n members" >&2; exit 1; }
  node "$ROOT/apps/loadgen/bin/quorate-loadgen.js" --quiet --wire binary --server-list "$eps" --mode put \
    --num-clients "$CLIENTS" --duration "${DUR}s" --keys 10000 --value-size 256 \
    --json "$S/q.json" >/dev/null
  printf '{"system":"quorate","n":%s,"rep":%s,"opsPerSec":%s}\n' "$n" "$2" "$(jq .throughput "$S/q.json")" >>"$OUT"
  stop_all
}

etcd_run() { # size rep
  local n=$1 cluster="" eps="" i
  rm -rf "$S/e"; mkdir -p "$S/e"
  for ((i = 1; i <= n; i++)); do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((24001 + 10 * i))"; done
  for ((i = 1; i <= n; i++)); do
    local c=http://127.0.0.1:$((24000 + 10 * i)) p=http://127.0.0.1:$((24001 + 10 * i))
    etcd --name "m$i" --data-dir "$S/e/m$i" --listen-client-urls "$c" --advertise-client-urls "$c" \
      --listen-peer-urls "$p" --initial-advertise-peer-urls "$p" --initial-cluster "$cluster" \
      --initial-cluster-state new --initial-cluster-token scale >"$S/e/m$i.log" 2>&1 &
    PIDS+=($!)
    eps+="${eps:+,}$c"
  done
  for _ in $(seq 100); do etcdctl --endpoints="$eps" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
  local line
  line=$("$BIN" -endpoints "$eps" -mode leader -op put -clients "$CLIENTS" -warmup 1 -duration "$DUR" -value-size 256 -json)
  printf '{"system":"etcd","n":%s,"rep":%s,"opsPerSec":%s}\n' "$n" "$2" "$(jq .opsPerSec <<<"$line")" >>"$OUT"
  stop_all
}

echo "# $(date -Is) $(nproc) cores; puts of 256 B at $CLIENTS clients, ${DUR}s per run, sizes $SIZES, $REPS repetition(s) -> $OUT"
for rep in $(seq "$REPS"); do
  for n in $SIZES; do
    if ((rep % 2)); then quorate_run "$n" "$rep"; etcd_run "$n" "$rep"; else etcd_run "$n" "$rep"; quorate_run "$n" "$rep"; fi
    tail -2 "$OUT"
  done
done

node - "$OUT" "$SIZES" <<'EOF'
const [file, sizes] = process.argv.slice(2);
const rows = require('node:fs').readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const of = (sys, n) => median(rows.filter((r) => r.system === sys && r.n === n).map((r) => r.opsPerSec));
const ns = sizes.split(' ').map(Number);
console.log('\n| members | quorate puts/s | of 3 members | etcd puts/s | of 3 members | quorate / etcd |');
console.log('|---|---|---|---|---|---|');
for (const n of ns) {
  const q = of('quorate', n), e = of('etcd', n);
  console.log(`| ${n} | ${Math.round(q).toLocaleString('en')} | ${(q / of('quorate', ns[0])).toFixed(2)} | ${Math.round(e).toLocaleString('en')} | ${(e / of('etcd', ns[0])).toFixed(2)} | ${(q / e).toFixed(2)} |`);
}
EOF
