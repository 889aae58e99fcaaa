/**
 * `client.watch()` against a real sharded cluster (three members in process, eight Raft
 * groups, real HTTP and client-protocol servers): batches name their group, and when the
 * member a watch is connected to stops, the watch resumes on another member from every
 * group's position, so each change is delivered exactly once per (group, index). A batch's
 * `resumeFrom` starts a later watch right after it; `fromIndex` is refused with a typed
 * error.
 */
import { ClientError, groupOfKey, QuorateClient, type WatchBatch } from '@quorate/client';
import { describe, expect, it } from 'vitest';
import { inProcessCluster, waitFor } from './helpers.js';

const G = 8;

/** A key of group `g`, tagged so that rounds of writes never share a key. */
const keyIn = (g: number, tag: string) => {
  for (let i = 0; ; i++) if (groupOfKey(`wg/${tag}/${i}`, G) === g) return `wg/${tag}/${i}`;
};

const keysOf = (b: WatchBatch) =>
  b.changes.map((c) => (c.type === 'put' || c.type === 'delete' ? c.key : '?'));

/** Runs a watch in the background. */
function follow(client: QuorateClient, opts: Parameters<QuorateClient['watch']>[0]) {
  const seen: WatchBatch[] = [];
  const progressed = new Set<number>();
  const stop = new AbortController();
  let error: unknown = null;
  /** While set, the consumer holds on to the batch it just got: the watch reads nothing more. */
  let gate: Promise<void> | null = null;
  let open = () => {};
  const done = (async () => {
    try {
      for await (const b of client.watch({
        ...opts,
        signal: stop.signal,
        onProgress: (_i, g) => {
          if (g !== undefined) progressed.add(g);
        },
      })) {
        seen.push(b);
        if (gate) await gate;
      }
    } catch (err) {
      error = err;
    }
  })();
  return {
    seen,
    progressed,
    /** Whether every key was delivered. */
    has: (keys: string[]) => {
      const got = new Set(seen.flatMap(keysOf));
      return keys.every((k) => got.has(k));
    },
    hold() {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release() {
      gate = null;
      open();
    },
    async end() {
      this.release();
      stop.abort();
      await done;
      if (error) throw error;
    },
  };
}

describe.each(['http', 'protocol'] as const)('watch over a sharded cluster (%s)', (wire) => {
  it('names groups, resumes on another member without a gap or a repeat, and restarts from resumeFrom', async () => {
    const c = await inProcessCluster(3, null, { groups: G });
    const clients: QuorateClient[] = [];
    try {
      await c.settled(30_000);
      const addr = (id: string) => (wire === 'http' ? c.url(id) : c.protocolUrl(id));
      const [first, ...rest] = c.nodes;
      // The watch connects to the first endpoint, the member that will stop.
      const watcher = new QuorateClient({ endpoints: [first!, ...rest].map((n) => addr(n.id)) });
      const writer = new QuorateClient({
        endpoints: rest.map((n) => addr(n.id)),
        timeoutMs: 30_000,
      });
      clients.push(watcher, writer);
      const w = follow(watcher, { prefix: 'wg/' });
      // Live in every group: each group said where it stands.
      await waitFor(() => w.progressed.size === G, 'progress from every group', 20_000);

      const written = new Map<string, { group: number; index: number }>();
      const round = async (tag: string) => {
        const keys = [...Array(G).keys()].map((g) => keyIn(g, tag));
        for (const [i, r] of (await Promise.all(keys.map((k) => writer.put(k, tag)))).entries())
          written.set(keys[i]!, { group: groupOfKey(keys[i]!, G), index: r.index });
        return keys;
      };
      const before = await round('before');
      await waitFor(() => w.has(before), 'the changes written before the stop', 20_000);
      const mark = w.seen.length;

      // The consumer holds the next batch, so the watch reads nothing more from its member;
      // that member stops and a change is made in every group. Only a resume from each
      // group's position finds them: the watch's member never saw them, and a watch from
      // "the next change" would start after them.
      w.hold();
      const held = keyIn(0, 'held');
      written.set(held, { group: 0, index: (await writer.put(held, 'held')).index });
      await waitFor(() => w.has([held]), 'the held change', 20_000);
      await first!.stop({ transferLeadership: false });
      const during = await round('during');
      w.release();
      await waitFor(() => w.has(during), 'the changes written while the watch moved', 30_000);
      const after = await round('after');
      await waitFor(() => w.has(after), 'the changes written after the move', 30_000);

      // Every batch names its key's group; no (group, index) twice; every write once, at
      // the group and index its write answered.
      const ids = w.seen.map((b) => `${b.group}:${b.index}`);
      expect(new Set(ids).size).toBe(ids.length);
      for (const b of w.seen) {
        expect(b.group).toBeTypeOf('number');
        for (const k of keysOf(b)) expect(groupOfKey(k, G)).toBe(b.group);
      }
      const delivered = w.seen.flatMap((b) => keysOf(b).map((k) => ({ k, group: b.group, index: b.index })));
      expect(delivered).toHaveLength(written.size);
      for (const d of delivered) expect(written.get(d.k)).toEqual({ group: d.group, index: d.index });
      expect(new Set(w.seen.map((b) => b.group)).size).toBe(G);

      // A later watch from a batch's resumeFrom (on another member) delivers exactly what
      // came after that batch, in every group.
      const resumeFrom = w.seen[mark - 1]!.resumeFrom!;
      expect(Object.keys(resumeFrom)).toHaveLength(G);
      const later = new QuorateClient({ endpoints: rest.map((n) => addr(n.id)) });
      clients.push(later);
      const w2 = follow(later, { prefix: 'wg/', from: resumeFrom });
      await waitFor(() => w2.has([held, ...during, ...after]), 'the replay from resumeFrom', 20_000);
      expect(w2.seen.map((b) => `${b.group}:${b.index}`).sort()).toEqual(ids.slice(mark).sort());
      await w2.end();

      // fromIndex: refused by the member (a fresh client) and by a client that knows.
      const fresh = new QuorateClient({ endpoints: rest.map((n) => addr(n.id)) });
      clients.push(fresh);
      for (const client of [fresh, writer]) {
        const it = client.watch({ prefix: 'wg/', fromIndex: 1 });
        const err = await it.next().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ClientError);
        expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
        expect(String((err as Error).message)).toMatch(/`from`/);
      }
      await w.end();
    } finally {
      for (const x of clients) await x.close();
      await c.stop();
    }
  }, 120_000);
});
