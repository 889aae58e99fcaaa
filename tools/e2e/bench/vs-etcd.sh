#!/usr/bin/env bash
# quorate against etcd on this machine, each with its best client: 3-member clusters of each
# on loopback, both durable (fsync, defaults), quorate driven by quorate-loadgen on the
# client protocol (--wire binary; no history file, as etcd's tool keeps none: writing one
# costs the load generator about 13 µs of CPU per operation on the machine both share), etcd
# by its native gRPC client
# (../shared/anchors/etcd-grpc-load, clientv3, all connections on the leader). Puts of 256 B
# over 10,000 keys at 1, 16, 64 and 256 clients, linearizable gets at 64. The two systems
# are alternated in each repetition (which goes first alternates too), so both see the same
# machine noise; the summary gives per-repetition values, medians and quorate/etcd.
#
#   pnpm bench:vs-etcd [-- REPS DURATION_S]        (default 2 repetitions of 10 s runs)
#
# CONFIGS (env) lists the runs as op:clients[:value bytes], e.g. the value-size curve:
#   CONFIGS="put:16:256 put:16:4096 put:16:16384 put:16:65536" pnpm bench:vs-etcd
#
# Each row also gives the leader's CPU per operation (user + system time of the leading
# process over the run, from /proc, divided by the operations it served): quorate's over the
# load generator's whole run, etcd's over its tool's measured window (-cpu-pids).
#
# Needs Debian's etcd-server, etcd-client, golang-go and golang-etcd-server-dev (installed with apt-get
# when missing and running as root), jq.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$ROOT/../shared/anchors" && pwd)}
EC=$ANCHORS/etcd-cluster
[[ ${1:-} == -- ]] && shift
REPS=${1:-2} DUR=${2:-10}
CONFIGS=${CONFIGS:-put:1 put:16 put:64 put:256 get:64}
S=$(mktemp -d /tmp/quorate-vs-etcd.XXXX)
OUT=$S/results.jsonl
QPIDS=()
export ETCDCTL_API=3

need() { command -v "$1" >/dev/null; }
if ! need etcd || ! need go || ! need jq || [[ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]]; then
  if [[ $(id -u) == 0 ]]; then
    echo "installing etcd, its Go client sources and jq from Debian..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client golang-go golang-etcd-server-dev jq >/dev/null
  else
    echo "needs: apt-get install -y etcd-server etcd-client golang-go golang-etcd-server-dev jq" >&2
    exit 2
  fi
fi
BIN=$S/etcd-grpc-load
mkdir -p "$S/gopath"
(cd "$ANCHORS/etcd-grpc-load" && GO111MODULE=off GOFLAGS= GOPATH="$S/gopath:/usr/share/gocode" go build -o "$BIN" .)
(cd "$ROOT" && pnpm exec turbo run build --filter=@quorate/node --filter=@quorate/loadgen --output-logs=errors-only >/dev/null)

QLEADER=
q_leader() { # sets QLEADER to the leading member's pid
  local i
  for i in 1 2 3; do
    curl -sf "http://127.0.0.1:$((8080 + i))/health" | grep -q '"isLeader":true' && { QLEADER=${QPIDS[$((i - 1))]}; return 0; }
  done
  return 1
}
q_start() {
  rm -rf "$S/q"; mkdir -p "$S/q"; QPIDS=(); QLEADER=
  for i in 1 2 3; do
    node "$ROOT/apps/node/bin/quorate.js" start --members local:3 --node-id "n$i" \
      --storage.data-dir "$S/q/n$i" --log.level warn >"$S/q/n$i.log" 2>&1 &
    QPIDS+=($!)
  done
  for _ in $(seq 300); do
    q_leader && return 0
    sleep 0.1
  done
  echo "quorate: no leader" >&2; exit 1
}
q_stop() { kill -TERM "${QPIDS[@]}" 2>/dev/null || true; wait "${QPIDS[@]}" 2>/dev/null || true; QPIDS=(); }
e_start() { rm -rf "$S/etcd"; "$EC/etcd-cluster.sh" start "$S/etcd" 3 >/dev/null; }
e_stop() { "$EC/etcd-cluster.sh" stop "$S/etcd" >/dev/null 2>&1 || true; }
trap 'q_stop; e_stop; rm -rf "$S/q" "$S/etcd"' EXIT

record() { # system op c rep ops p50 p99 errors size leaderCpuMicrosPerOp
  printf '{"system":"%s","op":"%s","c":%s,"rep":%s,"opsPerSec":%s,"p50":%s,"p99":%s,"errors":%s,"size":%s,"leaderCpuUs":%s}\n' "$@" >>"$OUT"
  printf '%-8s %-4s c=%-4s %6s B rep %s  %8.0f ops/s  p50 %6.2f ms  p99 %7.2f ms  errors %s  leader CPU %6.1f µs/op\n' "$1" "$2" "$3" "$9" "$4" "$5" "$6" "$7" "$8" "${10}"
}
CLK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks
# op:clients[:size] -> "op clients size"
parse() { local op=${1%%:*} rest=${1#*:}; local c=${rest%%:*} v=256; [[ $rest == *:* ]] && v=${rest#*:}; echo "$op $c $v"; }

quorate_runs() { # rep
  q_start
  for cfg in $CONFIGS; do
    local op c v json=$S/q.json t0
    read -r op c v <<<"$(parse "$cfg")"
    q_leader || { echo "quorate: no leader" >&2; exit 1; }
    t0=$(ticks "$QLEADER")
    node "$ROOT/apps/loadgen/bin/quorate-loadgen.js" --quiet --wire binary \
      --server-list http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 \
      --mode "$op" --num-clients "$c" --duration "${DUR}s" --keys 10000 --value-size "$v" \
      --json "$json" >/dev/null
    record quorate "$op" "$c" "$1" \
      "$(jq .throughput "$json")" "$(jq .latencyMs.p50 "$json")" "$(jq .latencyMs.p99 "$json")" "$(jq .errors "$json")" "$v" \
      "$(jq -n "($(ticks "$QLEADER") - $t0) / $CLK * 1e6 / $(jq .ops "$json")")"
  done
  q_stop
}

etcd_runs() { # rep
  e_start
  local eps lpid; eps=$("$EC/etcd-cluster.sh" endpoints "$S/etcd")
  lpid=$("$EC/etcd-cluster.sh" leader "$S/etcd" | awk '{print $2}')
  for cfg in $CONFIGS; do
    local op c v line
    read -r op c v <<<"$(parse "$cfg")"
    line=$("$BIN" -endpoints "$eps" -mode leader -op "$op" -clients "$c" -warmup 1 -duration "$DUR" -value-size "$v" -cpu-pids "$lpid" -json)
    record etcd "$op" "$c" "$1" \
      "$(jq .opsPerSec <<<"$line")" "$(jq .latencyMs.p50 <<<"$line")" "$(jq .latencyMs.p99 <<<"$line")" "$(jq .errors <<<"$line")" "$v" \
      "$(jq ".cpu.pidsPctOfOneCore[\"$lpid\"] / 100 * 1e6 / .opsPerSec" <<<"$line")"
  done
  e_stop
}

echo "# $(date -Is) $(nproc) cores, node $(node --version), $(etcd --version | head -1); ${DUR}s per run, $REPS repetitions -> $OUT"
for rep in $(seq "$REPS"); do
  if ((rep % 2)); then quorate_runs "$rep"; etcd_runs "$rep"; else etcd_runs "$rep"; quorate_runs "$rep"; fi
done

node - "$OUT" "$CONFIGS" <<'EOF'
const [file, configs] = process.argv.slice(2);
const rows = require('node:fs').readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
console.log('\n| op | clients | value bytes | quorate ops/s (each run) | etcd ops/s (each run) | quorate / etcd | p50 ms quorate · etcd | p99 ms quorate · etcd | leader CPU µs/op quorate · etcd |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const cfg of configs.split(' ')) {
  const [op, c, v = '256'] = cfg.split(':');
  const of = (sys) => rows.filter((r) => r.system === sys && r.op === op && r.c === Number(c) && r.size === Number(v));
  const q = of('quorate'), e = of('etcd');
  const mq = median(q.map((r) => r.opsPerSec)), me = median(e.map((r) => r.opsPerSec));
  const f = (xs) => xs.map((x) => Math.round(x).toLocaleString('en')).join(' · ');
  console.log(`| ${op} | ${c} | ${v} | ${Math.round(mq).toLocaleString('en')} (${f(q.map((r) => r.opsPerSec))}) | ${Math.round(me).toLocaleString('en')} (${f(e.map((r) => r.opsPerSec))}) | **${(mq / me).toFixed(2)}** | ${median(q.map((r) => r.p50)).toFixed(2)} · ${median(e.map((r) => r.p50)).toFixed(2)} | ${median(q.map((r) => r.p99)).toFixed(2)} · ${median(e.map((r) => r.p99)).toFixed(2)} | ${median(q.map((r) => r.leaderCpuUs)).toFixed(0)} · ${median(e.map((r) => r.leaderCpuUs)).toFixed(0)} |`);
}
EOF
