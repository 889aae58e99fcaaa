/**
 * A node that shards its key space over several Raft groups (docs/sharding.md), in
 * process with real HTTP and client-protocol servers: keys routed to their group's leader,
 * redirects that name the group, listings merged over groups, transactions within one
 * group, watches with per-group positions, leaders spread over the members, and what a
 * sharded cluster refuses.
 */
import { groupOfKey, QuorateClient } from '@quorate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

const G = 8;
let c: InProcessCluster;
beforeAll(async () => {
  c = await inProcessCluster(3, null, { groups: G });
  await c.settled(20_000);
});
afterAll(() => c.stop());

/** The member that leads group `g`. */
const leaderOf = (g: number) => c.nodes.find((n) => n.shards[g]!.raft.isLeader)!;
const keyIn = (g: number, tag = 'k') => {
  for (let i = 0; ; i++) if (groupOfKey(`${tag}${i}`, G) === g) return `${tag}${i}`;
};

describe('a node sharded over groups', () => {
  it('hosts every group on every member, each with one leader', () => {
    for (const n of c.nodes) expect(n.shards.map((s) => s.group)).toEqual([...Array(G).keys()]);
    for (let g = 0; g < G; g++) expect(c.nodes.filter((n) => n.shards[g]!.raft.isLeader)).toHaveLength(1);
  });

  it("spreads the groups' leaders over the members (within one of each other)", async () => {
    await waitFor(
      () => {
        const led = c.nodes.map((n) => n.shards.filter((s) => s.raft.isLeader).length);
        return Math.max(...led) - Math.min(...led) <= 1 && led.reduce((a, b) => a + b) === G;
      },
      'leaders spread',
      20_000,
    );
  });

  it("a write goes to its key's group: the group's leader takes it, another member names that leader", async () => {
    const g = 3;
    const key = keyIn(g);
    const leader = leaderOf(g);
    const other = c.nodes.find((n) => n !== leader)!;
    const r = await fetch(`${c.url(other.id)}/kv/${key}`, { method: 'PUT', body: 'v1' });
    expect(r.status).toBe(421);
    expect(r.headers.get('x-quorate-group')).toBe(String(g));
    expect(r.headers.get('x-quorate-groups')).toBe(String(G));
    expect(r.headers.get('x-quorate-leader')).toBe(c.url(leader.id));
    const body = (await r.json()) as { error: { code: string; group: number; leaderId: string } };
    expect(body.error).toMatchObject({ code: 'NOT_LEADER', group: g, leaderId: leader.id });
    const ok = await fetch(`${c.url(leader.id)}/kv/${key}`, { method: 'PUT', body: 'v1' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-quorate-group')).toBe(String(g));
    // Only that group's log has it.
    await waitFor(() => c.nodes.every((n) => n.shards[g]!.machine.get(key) !== undefined), 'replicated');
    for (const n of c.nodes)
      for (const s of n.shards) if (s.group !== g) expect(s.machine.get(key)).toBeUndefined();
    // A linearizable read from any member (ReadIndex through the group's leader).
    const read = await fetch(`${c.url(other.id)}/kv/${key}`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('v1');
  });

  it('lists a prefix across groups, merged in key order, with pages that miss nothing', async () => {
    const client = new QuorateClient({ endpoints: c.members.map((m) => m.clientAddress) });
    const keys = Array.from({ length: 60 }, (_, i) => `list/${String(i).padStart(3, '0')}`);
    await Promise.all(keys.map((k) => client.put(k, k)));
    expect(new Set(keys.map((k) => groupOfKey(k, G))).size).toBe(G);
    const seen: string[] = [];
    let after = '';
    for (;;) {
      const q = new URLSearchParams({ prefix: 'list/', limit: '7', ...(after ? { after } : {}) });
      const r = (await (await fetch(`${c.url(c.nodes[1]!.id)}/kv?${q}`)).json()) as {
        items: { key: string; value: string }[];
        more: boolean;
      };
      seen.push(...r.items.map((i) => i.key));
      if (!r.more) break;
      after = r.items.at(-1)!.key;
    }
    expect(seen).toEqual(keys);
    client.close();
  });

  it('a transaction runs in the one group of its keys; keys of two groups are refused, and nothing applies', async () => {
    const a = keyIn(5, 'ta');
    const b = keyIn(5, 'tb');
    const other = keyIn(6, 'tc');
    const at = c.url(leaderOf(5).id);
    const ok = await fetch(`${at}/txn`, {
      method: 'POST',
      body: JSON.stringify({
        compare: [{ key: a, exists: false }],
        success: [
          { op: 'put', key: a, value: '1' },
          { op: 'put', key: b, value: '2' },
        ],
      }),
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { succeeded: boolean }).succeeded).toBe(true);
    const cross = await fetch(`${at}/txn`, {
      method: 'POST',
      body: JSON.stringify({
        success: [
          { op: 'put', key: b, value: '3' },
          { op: 'put', key: other, value: '3' },
        ],
      }),
    });
    expect(cross.status).toBe(400);
    expect(((await cross.json()) as { error: { code: string; groups: number[] } }).error).toMatchObject({
      code: 'CROSS_GROUP_TXN',
      groups: [5, 6],
    });
    expect(new TextDecoder().decode(leaderOf(5).shards[5]!.machine.get(b)!.value)).toBe('2');
    expect(leaderOf(6).shards[6]!.machine.get(other)).toBeUndefined();
  });

  it("the client finds each group's leader and routes keys straight to it", async () => {
    const client = new QuorateClient({ endpoints: c.members.map((m) => m.clientAddress) });
    for (let g = 0; g < G; g++) await client.put(keyIn(g, 'route'), `g${g}`);
    for (let g = 0; g < G; g++) expect((await client.get(keyIn(g, 'route')))?.text()).toBe(`g${g}`);
    // The routing table names each group's leader (written again if the balancer moved one meanwhile).
    await waitFor(async () => {
      const { groups, leaders } = client.routing();
      const wrong = [...Array(G).keys()].filter((g) => leaders[g] !== c.url(leaderOf(g).id));
      for (const g of wrong) await client.put(keyIn(g, 'route'), `g${g}`);
      return groups === G && wrong.length === 0;
    }, 'a routing table naming every group leader');
    client.close();
  });

  it('a watch names the group of each change and resumes from per-group positions', async () => {
    const k1 = keyIn(1, 'w');
    const k2 = keyIn(2, 'w');
    const ctl = new AbortController();
    const r = await fetch(`${c.url(c.nodes[0]!.id)}/watch?prefix=w`, { signal: ctl.signal });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const events: { id: string; group: number; index: number; keys: string[] }[] = [];
    let buf = '';
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buf += new TextDecoder().decode(value);
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const id = /^id: (.*)$/m.exec(chunk)?.[1];
          const data = /^data: (.*)$/m.exec(chunk)?.[1];
          if (id && /event: batch/.test(chunk) && data) {
            const d = JSON.parse(data) as { group: number; index: number; changes: { key: string }[] };
            events.push({ id, group: d.group, index: d.index, keys: d.changes.map((x) => x.key) });
          }
        }
      }
    })();
    await fetch(`${c.url(leaderOf(1).id)}/kv/${k1}`, { method: 'PUT', body: 'a' });
    await fetch(`${c.url(leaderOf(2).id)}/kv/${k2}`, { method: 'PUT', body: 'b' });
    await waitFor(() => events.length >= 2, 'both changes', 5000);
    const e1 = events.find((e) => e.keys.includes(k1))!;
    const e2 = events.find((e) => e.keys.includes(k2))!;
    expect(e1).toMatchObject({ group: 1, id: `1:${e1.index}` });
    expect(e2).toMatchObject({ group: 2, id: `2:${e2.index}` });
    ctl.abort();
    await pump;
    // Resuming from group 1's change again replays it; fromIndex alone is refused.
    const again = await fetch(`${c.url(c.nodes[1]!.id)}/watch?prefix=w&from=1:${e1.index}`);
    const r2 = again.body!.getReader();
    let text = '';
    await waitFor(async () => {
      const { value } = await r2.read();
      text += new TextDecoder().decode(value);
      return text.includes(`id: 1:${e1.index}`);
    }, 'the replayed change');
    await r2.cancel();
    const bad = await fetch(`${c.url(c.nodes[1]!.id)}/watch?prefix=w&fromIndex=3`);
    expect(bad.status).toBe(400);
  });

  it('refuses what a sharded cluster does not support, with typed errors', async () => {
    const at = c.url(c.nodes[0]!.id);
    const join = await fetch(`${at}/admin/members`, {
      method: 'POST',
      body: JSON.stringify({ id: 'n9', peerAddress: '127.0.0.1:1', clientAddress: 'http://127.0.0.1:1' }),
    });
    expect(join.status).toBe(409);
    expect(((await join.json()) as { error: { code: string } }).error.code).toBe('MEMBERSHIP_FIXED');
    const backup = await fetch(`${at}/admin/snapshot`);
    expect(backup.status).toBe(501);
    expect(((await backup.json()) as { error: { code: string } }).error.code).toBe('NOT_SUPPORTED_SHARDED');
  });

  it('status, health and the state hash show every group', async () => {
    const at = c.url(c.nodes[0]!.id);
    const st = (await (await fetch(`${at}/cluster/status`)).json()) as {
      groups: { count: number; leaders: Record<string, number>; leaderless: number };
    };
    expect(st.groups.count).toBe(G);
    expect(Object.values(st.groups.leaders).reduce((a, b) => a + b)).toBe(G);
    const h = (await (await fetch(`${at}/health`)).json()) as {
      groups: { group: number; leaderId: string }[];
    };
    expect(h.groups.map((g) => g.group)).toEqual([...Array(G).keys()]);
    await waitFor(async () => {
      const hs = await Promise.all(
        c.nodes.map(
          async (n) =>
            (await (await fetch(`${c.url(n.id)}/admin/state-hash`)).json()) as {
              appliedIndex: string;
              hash: string;
            },
        ),
      );
      return new Set(hs.map((x) => x.appliedIndex)).size === 1 && new Set(hs.map((x) => x.hash)).size === 1;
    }, 'equal state hashes');
  });
});
