/**
 * The run's report: a table for the terminal, JSON for machines, a self-contained HTML
 * page with throughput and latency over time and the faults marked.
 */

import type { NemesisSummary } from './nemesis/nemesis.js';
import type { LatencySummary, SecondLine } from './stats.js';

export interface FaultRecord {
  kind: 'kill-leader' | 'pause-leader';
  /** Seconds since the start of the run. */
  at: number;
  node: string;
  /** ms from the fault to the next acknowledged write (null: none before the end). */
  gapMs: number | null;
  /** ms from the fault until another member said it leads (null: none seen). */
  electedMs: number | null;
  /** Errors between the fault and that write. */
  errors: number;
}

export interface Report {
  config: Record<string, unknown>;
  durationS: number;
  ops: number;
  throughput: number;
  latencyMs: LatencySummary;
  errors: number;
  errorRate: number;
  errorsByKind: Record<string, number>;
  casMisses: number;
  /** Of the errors, those whose outcome is open (`info` in the history). */
  ambiguous: number;
  faults: FaultRecord[];
  /** With --lease-reads: reads the members served under the leader lease (their counters, summed). */
  leaseReads?: number;
  /** With --nemesis: its faults, what proved each, and the checks after the run. */
  nemesis?: NemesisSummary;
  timeline: SecondLine[];
  loadgenCpuMicrosPerOp: number;
  check?: {
    linearizable: boolean | 'unknown';
    lostWrites: number;
    checkedOps: number;
    checkMs: number;
    /** Replicas whose final state could not be read: the lost-write check did not cover them. */
    unreadReplicas?: string[];
    detail?: string;
  };
}

const f1 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

export function formatTable(r: Report): string {
  const l = r.latencyMs;
  const lines = [
    '',
    `  operations   ${r.ops} in ${r.durationS.toFixed(1)} s`,
    `  throughput   ${r.throughput.toFixed(0)} ops/s`,
    `  latency ms   p50 ${f1(l.p50)}   p90 ${f1(l.p90)}   p99 ${f1(l.p99)}   p99.9 ${f1(l.p999)}   max ${f1(l.max)}`,
    `  errors       ${r.errors} (${(r.errorRate * 100).toFixed(3)} %)${
      Object.keys(r.errorsByKind).length
        ? `: ${Object.entries(r.errorsByKind)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`
        : ''
    }`,
  ];
  if (r.errors > 0)
    lines.push(`  ambiguous    ${r.ambiguous} of the errors (outcome open: info in the history)`);
  if (r.casMisses > 0) lines.push(`  cas misses   ${r.casMisses} (precondition false: expected, not errors)`);
  lines.push(`  loadgen CPU  ${r.loadgenCpuMicrosPerOp.toFixed(0)} µs per operation`);
  if (r.faults.length > 0) {
    const ms = (x: number | null) => (x === null ? 'none' : `${x.toFixed(0)} ms`);
    lines.push('', '  faults       at (s)  node  new leader after  next write after  errors meanwhile');
    for (const f of r.faults) {
      lines.push(
        `  ${f.kind.padEnd(12)} ${f.at.toFixed(1).padStart(6)}  ${f.node.padEnd(4)}  ${ms(f.electedMs).padStart(16)}  ${ms(f.gapMs).padStart(16)}  ${String(f.errors).padStart(6)}`,
      );
    }
  }
  if (r.leaseReads !== undefined)
    lines.push(`  lease reads  ${r.leaseReads} served under the leader lease (no heartbeat round)`);
  if (r.nemesis) {
    const n = r.nemesis;
    lines.push(
      '',
      `  nemesis      ${n.families.join(', ')}${n.skipped.length ? `   (skipped: ${n.skipped.map((s) => `${s.family}: ${s.reason}`).join('; ')})` : ''}`,
    );
    lines.push('  fault                    nodes     start (s)  end (s)  leader after heal  proof');
    for (const f of n.faults)
      lines.push(
        `  ${f.kind.padEnd(24)} ${f.nodes.join(',').padEnd(9)} ${f.startS.toFixed(1).padStart(9)}  ${(f.endS?.toFixed(1) ?? '-').padStart(7)}  ${(f.leaderAfterHealMs === null ? 'none' : `${f.leaderAfterHealMs.toFixed(0)} ms`).padStart(17)}  ${f.proof ?? 'NONE'}`,
      );
    lines.push(
      `  after heal   state hashes equal: ${n.stateHashesEqual}   writes after the last heal: ${n.writesAfterLastHeal}`,
    );
    for (const f of n.failures) lines.push(`  FAILED       ${f}`);
  }
  if (r.check) {
    lines.push(
      '',
      `  check        linearizable: ${r.check.linearizable}   lost writes: ${r.check.lostWrites}   (${r.check.checkedOps} ops in ${r.check.checkMs.toFixed(0)} ms)`,
    );
    if (r.check.detail) lines.push(`               ${r.check.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

export function toJson(r: Report): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/** A self-contained page: inline SVG charts, no scripts from anywhere. */
export function toHtml(r: Report): string {
  const W = 900;
  const H = 180;
  const t = r.timeline;
  const maxT = Math.max(1, t.length);
  const x = (s: number) => 50 + (s / maxT) * (W - 70);
  const chart = (title: string, values: number[], unit: string, color: string) => {
    const max = Math.max(1e-9, ...values);
    const y = (v: number) => H - 25 - (v / max) * (H - 45);
    const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const marks = r.faults
      .map(
        (f) =>
          `<line x1="${x(f.at)}" x2="${x(f.at)}" y1="15" y2="${H - 25}" stroke="#f85149" stroke-dasharray="4 3"/><text x="${x(f.at) + 3}" y="26" fill="#f85149" font-size="11">${f.kind} ${f.node}</text>`,
      )
      .join('');
    const spans = (r.nemesis?.faults ?? [])
      .map(
        (f) =>
          `<rect x="${x(f.startS)}" width="${Math.max(2, x(f.endS ?? f.startS) - x(f.startS))}" y="15" height="${H - 40}" fill="#f85149" fill-opacity="0.15"/><text x="${x(f.startS) + 2}" y="${H - 30}" fill="#f85149" font-size="10">${f.kind}</text>`,
      )
      .join('');
    return `<h2>${title}</h2><svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${title}">
<rect width="${W}" height="${H}" fill="#11161c"/>
<text x="8" y="${y(max) + 4}" fill="#8b98a5" font-size="11">${f1(max)}</text><text x="8" y="${H - 25}" fill="#8b98a5" font-size="11">0 ${unit}</text>
${spans}<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>${marks}
<text x="${W - 60}" y="${H - 8}" fill="#8b98a5" font-size="11">${maxT} s</text></svg>`;
  };
  const esc = (s: string) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>quorate-loadgen report</title>
<style>body{font:14px system-ui,sans-serif;background:#0f1419;color:#e6edf3;margin:24px;max-width:960px}
h1{font-size:20px}h2{font-size:13px;text-transform:uppercase;color:#8b98a5;margin:18px 0 6px}
pre{background:#182028;padding:12px;border-radius:6px;overflow:auto}</style></head><body>
<h1>quorate-loadgen</h1>
<pre>${esc(formatTable(r))}</pre>
${chart(
  'Throughput (ops/s)',
  t.map((l) => l.ops),
  'ops/s',
  '#58a6ff',
)}
${chart(
  'Latency p99 (ms)',
  t.map((l) => l.p99Ms),
  'ms',
  '#d29922',
)}
${chart(
  'Errors per second',
  t.map((l) => l.errors),
  '',
  '#f85149',
)}
<h2>Configuration</h2><pre>${esc(JSON.stringify(r.config, null, 2))}</pre>
</body></html>
`;
}
