/**
 * Routing by Raft group, against an emulated sharded cluster: three members on 127.0.0.1,
 * each a real server of one wire (node:http, or the client protocol's msgpack frames on
 * node:net), sharing one model of who leads each group. The model keeps the node's wire
 * contract for a cluster made with `cluster.groups` above 1:
 *
 * - every HTTP answer carries `X-Quorate-Groups: G`; the protocol's hello carries `groups`;
 * - an answer to a key's request (`/kv/<key>`, a transaction of one group) names the
 *   key's group (`X-Quorate-Group`);
 * - a member that does not lead the key's group answers 421 `NOT_LEADER` with `group`,
 *   `leaderId` and `leaderAddress` (that group's leader) and, on HTTP, `X-Quorate-Leader`;
 * - everything without a key (leases, `/health`) is group 0's, as on a one-group cluster;
 * - a transaction over keys of several groups is refused (400 `CROSS_GROUP_TXN`).
 *
 * With one group the model sends none of the sharding fields: today's cluster.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeBody,
  encodeFrame,
  FrameReader,
  groupOfKey,
  PROTOCOL_VERSION,
  QuorateClient,
  RejectedError,
} from '../src/index.js';

type Kind = 'http' | 'protocol';

/** A request as a member understood it, whatever the wire. */
interface Request {
  /** `put`, `get`, `delete`, `txn`, `lease.acquire`, `health`. */
  op: string;
  /** The keys it touches (none: it is group 0's). */
  keys: string[];
  /** A GET to answer late (ms), for the slow-leader test. */
  delayMs?: number;
}

/** What a member answers, before the wire gives it its form. */
type Outcome =
  | { kind: 'ok'; result: Record<string, unknown> }
  | { kind: 'value'; text: string }
  | { kind: 'notLeader'; leader: number }
  | { kind: 'refused'; status: number; code: string; message: string };

/** One request as the cluster logged it. */
interface Logged {
  member: number;
  op: string;
  /** The group the request belongs to (null: a cross-group transaction). */
  group: number | null;
  status: number;
}

/** Who leads what, shared by the three emulated members. */
class ShardedCluster {
  readonly log: Logged[] = [];
  /** The members' client URLs, in the wire's form (filled once they listen). */
  urls: string[] = [];
  /** Answer puts of these groups this late (ms). */
  readonly slowGroups = new Map<number, number>();

  constructor(
    readonly groups: number,
    /** The member leading each group. */
    readonly leaderOf: number[],
  ) {}

  get sharded(): boolean {
    return this.groups > 1;
  }

  /** The group of a request: its keys' one group, 0 without keys, null across groups. */
  groupOf(r: Request): number | null {
    if (r.keys.length === 0) return 0;
    const gs = new Set(r.keys.map((k) => groupOfKey(k, this.groups)));
    return gs.size === 1 ? [...gs][0]! : null;
  }

  /** Whether the answer names its group (a key's request, on a sharded cluster). */
  namesGroup(r: Request): boolean {
    return this.sharded && r.keys.length > 0;
  }

  handle(member: number, r: Request): Outcome {
    const group = this.groupOf(r);
    const out = this.decide(member, r, group);
    const status =
      out.kind === 'notLeader' ? 421 : out.kind === 'refused' ? out.status : out.kind === 'ok' ? 200 : 200;
    this.log.push({ member, op: r.op, group, status });
    return out;
  }

  private decide(member: number, r: Request, group: number | null): Outcome {
    if (r.op === 'health') {
      const leader = this.leaderOf[0]!;
      return {
        kind: 'ok',
        result: { isLeader: leader === member, leaderAddress: this.urls[leader], term: 1 },
      };
    }
    if (group === null) {
      return {
        kind: 'refused',
        status: 400,
        code: 'CROSS_GROUP_TXN',
        message: "the transaction's keys are in several groups",
      };
    }
    const leader = this.leaderOf[group]!;
    if (leader !== member) return { kind: 'notLeader', leader };
    switch (r.op) {
      case 'get':
        return { kind: 'value', text: `value of ${r.keys[0]}` };
      case 'put':
        return {
          kind: 'ok',
          result: { key: r.keys[0], version: 1, modIndex: 5, index: 5, created: true },
        };
      case 'delete':
        return { kind: 'ok', result: { key: r.keys[0], deleted: true, index: 6 } };
      case 'txn':
        return { kind: 'ok', result: { succeeded: true, index: 7, results: [] } };
      case 'lease.acquire':
        return { kind: 'ok', result: { name: 'job', holder: 'w1', token: 3, ttlMs: 5000 } };
      default:
        return { kind: 'refused', status: 400, code: 'UNKNOWN_OP', message: r.op };
    }
  }

  /** The log since `from`, as "member:op:group:status" lines, for readable failures. */
  since(from: number): Logged[] {
    return this.log.slice(from);
  }
}

const closers: (() => Promise<void>)[] = [];
const clients: QuorateClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(closers.splice(0).map((c) => c()));
});

function txnKeysOf(spec: Record<string, unknown>): string[] {
  const keys: string[] = [];
  for (const part of ['compare', 'success', 'failure']) {
    const items = spec[part];
    if (Array.isArray(items)) for (const i of items) keys.push(String((i as { key: unknown }).key));
  }
  return keys;
}

/** The request an HTTP member received (`null`: a path the emulation does not serve). */
function httpRequest(req: IncomingMessage, body: string): Request | null {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path === '/health') return { op: 'health', keys: [] };
  if (path.startsWith('/kv/')) {
    const op = ({ GET: 'get', PUT: 'put', DELETE: 'delete' } as Record<string, string>)[req.method ?? ''];
    return op ? { op, keys: [decodeURIComponent(path.slice(4))] } : null;
  }
  if (path === '/txn') return { op: 'txn', keys: txnKeysOf(JSON.parse(body) as Record<string, unknown>) };
  if (/^\/leases\/[^/]+\/acquire$/.test(path)) return { op: 'lease.acquire', keys: [] };
  return null;
}

async function httpMember(cluster: ShardedCluster, member: number): Promise<string> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = httpRequest(req, Buffer.concat(chunks).toString());
      const headers: Record<string, string> = {};
      if (cluster.sharded) headers['x-quorate-groups'] = String(cluster.groups);
      if (r === null) {
        res.writeHead(404, headers).end(JSON.stringify({ error: { code: 'ROUTE_NOT_FOUND' } }));
        return;
      }
      const group = cluster.groupOf(r);
      if (cluster.namesGroup(r) && group !== null) headers['x-quorate-group'] = String(group);
      const out = cluster.handle(member, r);
      const send = () => {
        if (out.kind === 'value') {
          res.writeHead(200, {
            ...headers,
            'x-quorate-version': '1',
            'x-quorate-mod-index': '5',
            'x-quorate-read-index': '9',
          });
          res.end(out.text);
          return;
        }
        headers['content-type'] = 'application/json';
        if (out.kind === 'ok') {
          res.writeHead(200, headers).end(JSON.stringify(out.result));
        } else if (out.kind === 'refused') {
          res
            .writeHead(out.status, headers)
            .end(JSON.stringify({ error: { code: out.code, message: out.message } }));
        } else {
          const address = cluster.urls[out.leader]!;
          headers['x-quorate-leader'] = address;
          const error: Record<string, unknown> = {
            code: 'NOT_LEADER',
            message: 'not the leader of this group',
            retryable: true,
            leaderId: `n${out.leader + 1}`,
            leaderAddress: address,
          };
          if (cluster.namesGroup(r) && group !== null) error.group = group;
          res.writeHead(421, headers).end(JSON.stringify({ error }));
        }
      };
      const slow = group !== null ? cluster.slowGroups.get(group) : undefined;
      if (slow !== undefined && out.kind === 'ok' && r.op === 'put') setTimeout(send, slow);
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function protocolMember(cluster: ShardedCluster, member: number): Promise<string> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const reader = new FrameReader(1 << 20);
    let hello = false;
    socket.on('data', (chunk: Buffer) => {
      for (const body of reader.push(chunk)) {
        const m = decodeBody(body) as Record<string, unknown>;
        if (!hello) {
          hello = true;
          const leader = cluster.leaderOf[0]!;
          socket.write(
            encodeFrame({
              t: 'hello',
              version: PROTOCOL_VERSION,
              nodeId: `n${member + 1}`,
              leaderId: `n${leader + 1}`,
              leaderAddress: cluster.urls[leader],
              ...(cluster.sharded ? { groups: cluster.groups } : {}),
            }),
          );
          continue;
        }
        const op = String(m.op);
        const r: Request = {
          op,
          keys: op === 'txn' ? txnKeysOf(m) : typeof m.key === 'string' ? [m.key] : [],
        };
        const group = cluster.groupOf(r);
        const out = cluster.handle(member, r);
        const answer = (x: Record<string, unknown>) => {
          if (!socket.destroyed) socket.write(encodeFrame({ id: m.id, ...x }));
        };
        const send = () => {
          if (out.kind === 'value') {
            answer({
              r: { found: true, value: Buffer.from(out.text), version: 1, modIndex: 5, readIndex: 9 },
            });
          } else if (out.kind === 'ok') {
            answer({ r: out.result });
          } else if (out.kind === 'refused') {
            answer({ e: { status: out.status, code: out.code, message: out.message, retryable: false } });
          } else {
            answer({
              e: {
                status: 421,
                code: 'NOT_LEADER',
                message: 'not the leader of this group',
                retryable: true,
                leaderId: `n${out.leader + 1}`,
                leaderAddress: cluster.urls[out.leader],
                ...(cluster.namesGroup(r) && group !== null ? { group } : {}),
              },
            });
          }
        };
        const slow = group !== null ? cluster.slowGroups.get(group) : undefined;
        if (slow !== undefined && out.kind === 'ok' && r.op === 'put') setTimeout(send, slow);
        else send();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  closers.push(close);
  return `quorate://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** `perGroup` keys of every group, in group order. */
function keysByGroup(groups: number, perGroup: number): string[][] {
  const out: string[][] = Array.from({ length: groups }, () => []);
  for (let i = 0; out.some((ks) => ks.length < perGroup); i++) {
    const k = `key-${i}`;
    const g = groupOfKey(k, groups);
    if (out[g]!.length < perGroup) out[g]!.push(k);
  }
  return out;
}

describe.each<Kind>(['http', 'protocol'])('routing by Raft group, over %s', (kind) => {
  const start = async (groups: number, leaderOf: number[]) => {
    const cluster = new ShardedCluster(groups, leaderOf);
    for (let m = 0; m < 3; m++)
      cluster.urls.push(kind === 'http' ? await httpMember(cluster, m) : await protocolMember(cluster, m));
    return cluster;
  };
  const client = (
    cluster: ShardedCluster,
    extra: Partial<ConstructorParameters<typeof QuorateClient>[0]> = {},
  ) => {
    const c = new QuorateClient({ endpoints: cluster.urls, backoff: { baseMs: 2, maxMs: 10 }, ...extra });
    clients.push(c);
    return c;
  };
  /** Every key operation once per key: put, get, cas, delete, and a transaction per group. */
  const everyOp = async (c: QuorateClient, byGroup: string[][]) => {
    for (const keys of byGroup) {
      for (const k of keys) {
        await c.put(k, 'v');
        expect((await c.get(k))?.text()).toBe(`value of ${k}`);
        await c.cas(k, 'v', 'w');
        await c.delete(k);
      }
      const r = await c.txn({
        compare: [{ key: keys[0]!, exists: true }],
        success: keys.map((k) => ({ op: 'put' as const, key: k, value: 'x' })),
      });
      expect(r.succeeded).toBe(true);
    }
  };

  it('after one redirect per group at most, every key request goes straight to its group leader', async () => {
    const G = 4;
    const cluster = await start(G, [0, 1, 2, 0]);
    const byGroup = keysByGroup(G, 3);
    const c = client(cluster);
    expect(c.routing()).toEqual({ groups: 1, leaders: {} });

    // Warm-up: one write per group. A member that does not lead the key's group names
    // that group's leader; the client follows and remembers it, for that group only.
    for (const keys of byGroup) await c.put(keys[0]!, 'v');
    const warmUp = cluster.since(0);
    for (let g = 0; g < G; g++) {
      const redirects = warmUp.filter((l) => l.group === g && l.status === 421);
      expect(redirects.length, `redirects for group ${g}`).toBeLessThanOrEqual(1);
    }
    const [m0, m1, m2] = cluster.urls;
    expect(c.routing()).toEqual({ groups: G, leaders: { 0: m0, 1: m1, 2: m2, 3: m0 } });
    expect(c.knownLeader).toBe(m0);

    // From now on: no redirect, and each request lands on its group's leader.
    const from = cluster.log.length;
    await everyOp(c, byGroup);
    await c.acquireLease('job', 'w1', 5000);
    const after = cluster.since(from);
    expect(after.length).toBe(G * (3 * 4 + 1) + 1);
    expect(after.filter((l) => l.status !== 200)).toEqual([]);
    for (const l of after) expect(l.member, `${l.op} of group ${l.group}`).toBe(cluster.leaderOf[l.group!]);
  });

  it('a new leader of one group changes that group entry only', async () => {
    const G = 4;
    const cluster = await start(G, [0, 1, 2, 0]);
    const byGroup = keysByGroup(G, 2);
    const c = client(cluster);
    for (const keys of byGroup) await c.put(keys[0]!, 'v');
    const before = c.routing();
    const [m0, m1, m2] = cluster.urls;
    expect(before.leaders).toEqual({ 0: m0, 1: m1, 2: m2, 3: m0 });

    // Group 3 moves from m0 (which still leads group 0) to m1.
    cluster.leaderOf[3] = 1;
    const from = cluster.log.length;
    await c.put(byGroup[3]![1]!, 'v');
    expect(cluster.since(from).map((l) => [l.member, l.status])).toEqual([
      [0, 421],
      [1, 200],
    ]);
    expect(c.routing()).toEqual({ groups: G, leaders: { ...before.leaders, 3: m1 } });

    // The other groups were not disturbed: still no redirect anywhere.
    const next = cluster.log.length;
    await everyOp(c, byGroup);
    expect(cluster.since(next).filter((l) => l.status !== 200)).toEqual([]);
    expect(c.routing().leaders).toEqual({ 0: m0, 1: m1, 2: m2, 3: m1 });
  });

  it('a leader change of group 0 moves the lease calls and group 0 keys, nothing else', async () => {
    const G = 3;
    const cluster = await start(G, [0, 1, 2]);
    const byGroup = keysByGroup(G, 1);
    const c = client(cluster);
    for (const keys of byGroup) await c.put(keys[0]!, 'v');
    await c.acquireLease('job', 'w1', 5000);
    const [m0, m1, m2] = cluster.urls;
    expect(c.routing().leaders).toEqual({ 0: m0, 1: m1, 2: m2 });

    cluster.leaderOf[0] = 2;
    const from = cluster.log.length;
    await c.acquireLease('job', 'w1', 5000);
    // A keyless redirect names no group: it is group 0's, as on a one-group cluster.
    expect(cluster.since(from).map((l) => [l.member, l.status])).toEqual([
      [0, 421],
      [2, 200],
    ]);
    expect(c.routing().leaders).toEqual({ 0: m2, 1: m1, 2: m2 });
    expect(c.knownLeader).toBe(m2);
    const next = cluster.log.length;
    for (const keys of byGroup) await c.put(keys[0]!, 'v');
    expect(cluster.since(next).filter((l) => l.status !== 200)).toEqual([]);
  });

  it('a transaction over keys of several groups is refused, definitely, and teaches nothing', async () => {
    const G = 3;
    const cluster = await start(G, [0, 1, 2]);
    const byGroup = keysByGroup(G, 1);
    const c = client(cluster);
    for (const keys of byGroup) await c.put(keys[0]!, 'v');
    const before = c.routing();
    const err = await c
      .txn({ success: byGroup.map((ks) => ({ op: 'put' as const, key: ks[0]!, value: 'x' })) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RejectedError);
    expect((err as RejectedError).serverCode).toBe('CROSS_GROUP_TXN');
    expect((err as RejectedError).ambiguous).toBe(false);
    expect(c.routing()).toEqual(before);
  });

  it('a slow leader of another group than 0 is waited for, not abandoned for group 0 leader', async () => {
    // /health names group 0's leader (m0); group 1's leader (m1) answers writes late. The
    // "who leads?" probe cannot speak for group 1, so it must not move the write to m0.
    const G = 2;
    const cluster = await start(G, [0, 1]);
    const [k] = keysByGroup(G, 1)[1]!;
    const c = client(cluster, { silentLeaderMs: 50 });
    await c.put(k!, 'v');
    expect(c.routing().leaders[1]).toBe(cluster.urls[1]);
    cluster.slowGroups.set(1, 400);
    const from = cluster.log.length;
    const r = await c.put(k!, 'w');
    expect(r.duplicate).toBe(false);
    expect(cluster.since(from).filter((l) => l.op === 'put')).toEqual([
      { member: 1, op: 'put', group: 1, status: 200 },
    ]);
  });

  it('a single-group cluster (no sharding fields) keeps one leader, for keys and all', async () => {
    const cluster = await start(1, [1]);
    const c = client(cluster);
    const keys = ['a', 'b', 'c', 'd', 'e'];
    await c.put('a', 'v');
    // The first member in turn redirected once; that leader is the cluster's.
    expect(cluster.log.map((l) => [l.member, l.status])).toEqual([
      [0, 421],
      [1, 200],
    ]);
    expect(c.routing()).toEqual({ groups: 1, leaders: { 0: cluster.urls[1] } });
    expect(c.knownLeader).toBe(cluster.urls[1]);
    const from = cluster.log.length;
    await everyOp(c, [keys]);
    await c.acquireLease('job', 'w1', 5000);
    const after = cluster.since(from);
    expect(after.length).toBe(keys.length * 4 + 2);
    for (const l of after) expect([l.member, l.status]).toEqual([1, 200]);
    expect(c.routing()).toEqual({ groups: 1, leaders: { 0: cluster.urls[1] } });
  });
});

describe('routing by Raft group, HTTP only', () => {
  it('a group leader that stops answering is forgotten for its group only; the members name the next one', async () => {
    const G = 3;
    const cluster = new ShardedCluster(G, [0, 1, 2]);
    for (let m = 0; m < 3; m++) cluster.urls.push(await httpMember(cluster, m));
    const byGroup = keysByGroup(G, 1);
    const c = new QuorateClient({ endpoints: cluster.urls, backoff: { baseMs: 2, maxMs: 10 } });
    clients.push(c);
    for (const keys of byGroup) await c.put(keys[0]!, 'v');
    const [m0, m1, m2] = cluster.urls;
    expect(c.routing().leaders).toEqual({ 0: m0, 1: m1, 2: m2 });

    // m2 is gone for good (its port refuses); group 2 elects m1.
    await closers.pop()!();
    cluster.leaderOf[2] = 1;
    const from = cluster.log.length;
    await c.put(byGroup[2]![0]!, 'v');
    expect(c.routing().leaders).toEqual({ 0: m0, 1: m1, 2: m1 });
    const served = cluster.since(from).filter((l) => l.status === 200);
    expect(served).toEqual([{ member: 1, op: 'put', group: 2, status: 200 }]);
  });
});
