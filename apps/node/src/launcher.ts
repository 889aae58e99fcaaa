/**
 * `pnpm start`: a local three-node cluster on loopback — n1..n3, HTTP on
 * 127.0.0.1:8081-8083, the client protocol on 9081-9083, Raft on 127.0.0.1:7001-7003,
 * data under ./data/, TCP. Prints the
 * URLs; Ctrl-C stops all three cleanly. If one dies, the others keep running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const bin = join(import.meta.dirname, '..', 'bin', 'quorate.js');
const n = Number(process.env.QUORATE_LOCAL_NODES ?? 3);
const transport = process.env.QUORATE_TRANSPORT_KIND ?? 'tcp';
const procs = new Map<string, ChildProcess>();
// QUORATE_LOCAL_NODES is the launcher's own; a node refuses QUORATE_* variables it does not know.
const { QUORATE_LOCAL_NODES: _ownSetting, ...nodeEnv } = process.env;
let stopping = false;

for (let i = 1; i <= n; i++) {
  const id = `n${i}`;
  const p = spawn(
    process.execPath,
    [
      bin,
      'start',
      '--members',
      `local:${n}`,
      '--node-id',
      id,
      '--storage.data-dir',
      join('data', id),
      '--transport.kind',
      transport,
      '--stop-with-stdin',
      ...process.argv.slice(2),
    ],
    // Own process group: a terminal's Ctrl-C (or a supervisor's signal to the launcher's
    // group) reaches the launcher only, which then stops each node once. Each node's
    // stdin is a pipe from the launcher: when the launcher dies, however it dies (SIGKILL
    // included), the pipe closes and the node stops by itself.
    { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: nodeEnv },
  );
  procs.set(id, p);
  // Whole lines only: a line split across two reads gets its prefix once.
  for (const [from, to] of [
    [p.stdout, process.stdout],
    [p.stderr, process.stderr],
  ] as const) {
    if (from)
      createInterface({ input: from, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (l) =>
        to.write(`${id} | ${l}\n`),
      );
  }
  p.on('exit', (code, signal) => {
    procs.delete(id);
    if (!stopping) {
      process.stderr.write(`launcher: ${id} exited (${signal ?? `code ${code}`}); the others keep running\n`);
    }
    if (stopping && procs.size === 0) process.exit(0);
  });
}

process.stdout.write(
  `quorate: ${n}-node cluster on loopback (${transport})\n` +
    Array.from(
      { length: n },
      (_, i) =>
        `  n${i + 1}: http://127.0.0.1:${8081 + i}   quorate://127.0.0.1:${9081 + i}   raft 127.0.0.1:${7001 + i}   data data/n${i + 1}\n`,
    ).join('') +
    `  dashboard: http://127.0.0.1:8081/\n  Ctrl-C stops all nodes.\n`,
);

let stoppingSince = 0;
const stopAll = (sig: NodeJS.Signals) => {
  if (stopping) {
    // One Ctrl-C can arrive twice: from the terminal, and forwarded by a package manager
    // (`pnpm start`). Only a second signal a while later means "stop now".
    if (performance.now() - stoppingSince < 1_000) return;
    process.stdout.write(`launcher: ${sig} again: killing the nodes\n`);
    for (const p of procs.values()) p.kill('SIGKILL');
    process.exit(1);
  }
  stopping = true;
  stoppingSince = performance.now();
  process.stdout.write(`\nlauncher: ${sig}: stopping ${procs.size} node(s)...\n`);
  if (procs.size === 0) process.exit(0);
  for (const p of procs.values()) p.kill('SIGTERM');
  // A node exits within 5 s of SIGTERM by itself; this is the launcher's own backstop.
  setTimeout(() => {
    for (const p of procs.values()) p.kill('SIGKILL');
    process.exit(1);
  }, 6_000).unref();
};
process.on('SIGINT', stopAll);
// Whatever ends the launcher, no node outlives it.
process.on('exit', () => {
  for (const p of procs.values()) p.kill('SIGKILL');
});
process.on('SIGTERM', stopAll);
