/**
 * Real processes, real SIGKILLs: a child appends and acknowledges batches as fast as it
 * can and is killed at seeded-random moments; after each kill the store must hold every
 * acknowledged batch intact, and the hard state must never go backwards.
 */
import type { HardState } from '@quorate/raft';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStorage, StorageErrorCode } from '../src/index.js';
import { Child, killAll } from './child.js';
import { samePayload, snapshotChunk } from './fixtures/payload.js';
import { tempDir } from './helpers.js';

const dirs: { remove(): void }[] = [];
afterEach(async () => {
  await killAll();
  for (const d of dirs.splice(0)) d.remove();
});

function newDir(): string {
  const d = tempDir('quorate-crash-');
  dirs.push(d);
  return d.path;
}

/** mulberry32: a seeded source for the kill schedule. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

interface Acked {
  /** Term of every acknowledged index (index i at i - 1); holes are entries written but never acknowledged. */
  terms: number[];
  hard: HardState | null;
}

function recordAcks(lines: readonly string[], acked: Acked): number {
  let n = 0;
  for (const line of lines) {
    const m = /^acked (\d+) (\d+) (\d+) (\S+)$/.exec(line);
    if (!m) continue;
    n++;
    const [first, last, term] = [Number(m[1]), Number(m[2]), Number(m[3])];
    for (let i = first; i <= last; i++) acked.terms[i - 1] = term;
    acked.hard = { term, vote: m[4]!, commit: 0 };
  }
  return n;
}

/** Open the store as a restarted node would, and check it against what was acknowledged. */
async function verify(dir: string, acked: Acked, floor: HardState): Promise<HardState> {
  const s = await LmdbStorage.open({ dir, clusterId: 'crash', nodeId: 'n1' });
  try {
    const hard = s.hardState();
    // Never backwards: not below what a previous open saw, nor below the last ack.
    expect(hard.term).toBeGreaterThanOrEqual(floor.term);
    if (hard.term === floor.term && floor.vote !== null) expect(hard.vote).toBe(floor.vote);
    if (acked.hard) {
      expect(hard.term).toBeGreaterThanOrEqual(acked.hard.term);
      if (hard.term === acked.hard.term) expect(hard.vote).toBe(acked.hard.vote);
    }
    expect(s.lastIndex()).toBeGreaterThanOrEqual(acked.terms.length);
    // Every entry on disk, acknowledged or not, is whole; acknowledged ones have their term.
    let prevTerm = 0;
    for (let lo = 1; lo <= s.lastIndex(); ) {
      const es = s.entries(lo, s.lastIndex() + 1, 1 << 20);
      for (const e of es) {
        if (!samePayload(e.data, e.index, e.term)) throw new Error(`entry ${e.index} is damaged`);
        const ackedTerm = acked.terms[e.index - 1];
        if (ackedTerm !== undefined && ackedTerm !== e.term) {
          throw new Error(`entry ${e.index}: term ${e.term}, acknowledged with ${acked.terms[e.index - 1]}`);
        }
        if (e.term < prevTerm) throw new Error(`entry ${e.index}: term goes back to ${e.term}`);
        prevTerm = e.term;
      }
      lo += es.length;
    }
    return hard;
  } finally {
    await s.close();
  }
}

describe('crash safety with real processes', () => {
  it('SIGKILLed at random moments, 20 times: every acknowledged batch survives, the hard state never goes back', async () => {
    const dir = newDir();
    const rnd = rng(20240611);
    const acked: Acked = { terms: [], hard: null };
    let floor: HardState = { term: 0, vote: null, commit: 0 };
    let kills = 0;
    let duringOpen = 0;
    for (let round = 0; round < 20; round++) {
      const child = new Child('append', dir);
      if (rnd(6) === 0) {
        // Somewhere in start-up: loading, opening, cleaning up, or the first writes.
        duringOpen++;
        const wait = rnd(400);
        await Promise.race([child.exited, new Promise((r) => setTimeout(r, wait))]);
      } else {
        const target = rnd(100);
        await child.until(
          () => recordAcks(child.lines, { terms: [], hard: null }) >= target,
          `${target} acks`,
        );
      }
      await child.kill();
      kills++;
      recordAcks(child.lines, acked);
      try {
        floor = await verify(dir, acked, floor);
      } catch (err) {
        console.log(`round ${round}`, child.lines.slice(0, 3), child.lines.slice(-5));
        throw err;
      }
    }
    expect(kills).toBe(20);
    const count = acked.terms.filter((t) => t !== undefined).length;
    expect(count).toBeGreaterThan(100);
    console.log(`crash: ${kills} kills (${duringOpen} during start-up), ${count} acknowledged entries`);
  }, 120_000);

  it('SIGKILLed while writing snapshots, 6 times: the latest committed snapshot is whole, never a partial one', async () => {
    const dir = newDir();
    const rnd = rng(7);
    let committed = 0;
    for (let round = 0; round < 6; round++) {
      const child = new Child('snapshot', dir);
      const target = committed + 1 + rnd(4);
      await child.until(() => child.lines.includes(`committed ${target}`), `snapshot ${target}`);
      await child.kill();
      for (const l of child.lines) if (l.startsWith('committed ')) committed = Number(l.slice(10));
      const s = await LmdbStorage.open({ dir, clusterId: 'crash', nodeId: 'n1' });
      try {
        const latest = s.snapshots.latest();
        expect(latest?.index).toBeGreaterThanOrEqual(committed);
        const want = Array.from({ length: 32 }, (_, c) => snapshotChunk(latest!.index, c));
        const got: Uint8Array[] = [];
        for await (const chunk of s.snapshots.read(latest!)) got.push(chunk.slice());
        expect(Buffer.concat(got).equals(Buffer.concat(want))).toBe(true);
      } finally {
        await s.close();
      }
    }
  }, 60_000);

  it('a second process opening the directory is refused with the lock error, and can open it once the first is gone', async () => {
    const dir = newDir();
    const holder = new Child('hold', dir);
    await holder.until(() => holder.lines.includes('ready'), 'the holder to open the store');

    const other = new Child('try', dir);
    await other.exited;
    const line = other.lines.find((l) => l.startsWith('refused ')) ?? other.lines.join('\n');
    expect(line).toContain(`refused ${StorageErrorCode.Locked}`);
    expect(line).toContain(`process ${holder.pid}`);
    expect(line).toContain(dir);

    // In this process too.
    await expect(LmdbStorage.open({ dir, clusterId: 'crash', nodeId: 'n1' })).rejects.toMatchObject({
      code: StorageErrorCode.Locked,
    });

    // The holder dies without cleaning up: its stale lock is taken over.
    await holder.kill();
    const after = new Child('try', dir);
    await after.exited;
    expect(after.lines).toContain('opened');
  }, 60_000);
});
