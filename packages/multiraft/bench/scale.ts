/**
 * `pnpm --filter @quorate/multiraft bench:scale [-- --groups N --hosts H --idle-ms M]`
 *
 * H hosts (default 3) in H child processes, each a `MultiRaftHost` of N groups (default
 * 1,000) over TCP on 127.0.0.1 and LMDB files (fsync on), every host a member of every
 * group. Reports: the time from adding the groups until every group has a leader known to
 * every host; with every group idle (quiesced), each process's CPU (from /proc) and the
 * Raft and host messages it sends; memory per group (RSS growth / groups).
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: { groups: { type: 'string' }, hosts: { type: 'string' }, 'idle-ms': { type: 'string' } },
});
const groups = Number(values.groups ?? 1000);
const hosts = Number(values.hosts ?? 3);
const idleMs = Number(values['idle-ms'] ?? 5000);
const dir = mkdtempSync(join(tmpdir(), 'quorate-scale-'));
const ids = Array.from({ length: hosts }, (_, i) => `h${i + 1}`);

type Reply = Record<string, unknown> & { type: string };
const children = ids.map((id) =>
  fork(join(import.meta.dirname, 'scale-child.ts'), [id, dir, String(groups)], {
    execArgv: ['--import', 'tsx', '--conditions=source', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  }),
);
const next = (i: number, type: string) =>
  new Promise<Reply>((resolve) => {
    const on = (m: Reply) => {
      if (m.type !== type) return;
      children[i]!.off('message', on);
      resolve(m);
    };
    children[i]!.on('message', on);
  });
const ask = async (cmd: Record<string, unknown>, type: string) => {
  const replies = children.map((_, i) => next(i, type));
  for (const c of children) c.send(cmd);
  return Promise.all(replies);
};

try {
  const listening = await Promise.all(children.map((_, i) => next(i, 'listening')));
  const peers = Object.fromEntries(ids.map((id, i) => [id, listening[i]!.address as string]));
  console.log(
    `${hosts} hosts x ${groups} groups (processes ${children.map((c) => c.pid).join(', ')}), data in ${dir}`,
  );
  const t0 = performance.now();
  const added = await ask({ cmd: 'peers', peers, ids }, 'added');
  console.log(
    `groups added (and bootstrapped) in ${added.map((a) => `${(a.ms as number).toFixed(0)} ms`).join(', ')}`,
  );
  let st: Reply[] = [];
  for (;;) {
    st = await ask({ cmd: 'status' }, 'status');
    if (st.every((s) => s.knownLeaders === groups)) break;
    if (performance.now() - t0 > 60_000)
      throw new Error(
        `not every group has a leader after 60 s: ${JSON.stringify(st.map((s) => s.knownLeaders))}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
  const leaderMs = performance.now() - t0;
  console.log(
    `every group has a leader, known on every host: ${(leaderMs / 1000).toFixed(2)} s after the groups were added`,
  );
  console.log(`leaders per host: ${st.map((s) => s.leaders).join(' / ')}`);
  const tq = performance.now();
  for (;;) {
    st = await ask({ cmd: 'status' }, 'status');
    if (st.every((s) => s.quiesced === groups)) break;
    if (performance.now() - tq > 60_000)
      throw new Error(`not every group quiesced after 60 s: ${JSON.stringify(st.map((s) => s.quiesced))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(
    `every group quiesced on every host ${((performance.now() - t0) / 1000).toFixed(2)} s after the groups were added`,
  );
  const cpu = await ask({ cmd: 'cpu', ms: idleMs }, 'cpu');
  for (const [i, c] of cpu.entries()) {
    console.log(
      `${ids[i]} idle for ${idleMs} ms: CPU ${(c.percent as number).toFixed(1)} % of one core; sent ${c.raftMessages} Raft and ${c.hostMessages} host messages, ${c.groupTicks} group ticks`,
    );
  }
  st = await ask({ cmd: 'status' }, 'status');
  if (process.env.SCALE_DEBUG)
    for (const s of st) console.log(JSON.stringify(s.events), JSON.stringify(s.blockers));
  for (const [i, s] of st.entries()) {
    const delta = (s.rssMiB as number) - (s.rssBeforeMiB as number);
    const storage = s.storage as { batches: number; commits: number };
    console.log(
      `${ids[i]}: RSS ${(s.rssMiB as number).toFixed(0)} MiB (${(s.rssBeforeMiB as number).toFixed(0)} MiB before the groups): ${((delta * 1024) / groups).toFixed(1)} KiB per group; LMDB ${storage.batches} batches in ${storage.commits} commits`,
    );
  }
} finally {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((r) => {
          c.once('exit', () => r());
          c.send({ cmd: 'exit' });
          setTimeout(() => c.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
}
