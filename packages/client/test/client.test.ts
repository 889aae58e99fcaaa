/**
 * The client's retry protocol, exercised against small scripted members on 127.0.0.1, once
 * over each wire: real HTTP (node:http) and the real client protocol (msgpack frames on
 * node:net, hello first). The behaviour against a real cluster is covered in
 * apps/node/test; here each member plays one situation a cluster can be in — a follower
 * pointing elsewhere, a leader that times out, a member that drops the connection after
 * reading the request — so that every branch of the loop is pinned on both wires.
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
  type ClientError,
  decodeBody,
  encodeFrame,
  FrameReader,
  HttpWire,
  OutcomeUnknownError,
  PROTOCOL_VERSION,
  ProtocolWire,
  QuorateClient,
  RejectedError,
  TimeoutError,
  UnavailableError,
  WireError,
} from '../src/index.js';

type Kind = 'http' | 'protocol';

/** A request as a scripted member saw it, whatever the wire. */
interface Seen {
  /** `put`, `get`, `delete`, `health`, ... */
  op: string;
  key: string | null;
  /** A compare-and-set's expected value. */
  expect: string | null;
  cid: string | null;
  seq: string | null;
  timeoutMs: number | null;
  token: string | null;
}

/** How a scripted member answers one request. */
interface Reply {
  /** Success with this answer; `duplicate`: the cluster had applied it before. */
  ok(result: Record<string, unknown>, duplicate?: boolean): void;
  /** A value read. */
  value(text: string, meta: { version: number; modIndex: number; readIndex: number }): void;
  notFound(): void;
  /** An error answer, with the HTTP status the API gives it, and where the leader is. */
  error(status: number, error: Record<string, unknown>, leader?: string): void;
  /** Drop the connection after reading the request. */
  drop(): void;
}

type Handler = (req: Seen, reply: Reply, n: number) => void;

const servers: { close(): Promise<void>; url: string }[] = [];
const clients: QuorateClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function httpSeen(req: IncomingMessage): Seen {
  const url = new URL(req.url ?? '/', 'http://x');
  const h = (k: string) => (typeof req.headers[k] === 'string' ? (req.headers[k] as string) : null);
  const path = url.pathname;
  const key = path.startsWith('/kv/') ? decodeURIComponent(path.slice(4)) : null;
  const op =
    path === '/health'
      ? 'health'
      : key !== null
        ? (({ GET: 'get', PUT: 'put', DELETE: 'delete' } as Record<string, string>)[req.method ?? ''] ?? '?')
        : `${req.method} ${path}`;
  const auth = h('authorization');
  return {
    op,
    key,
    expect: url.searchParams.get('expect'),
    cid: h('x-quorate-client-id'),
    seq: h('x-quorate-seq'),
    timeoutMs: h('x-quorate-timeout-ms') === null ? null : Number(h('x-quorate-timeout-ms')),
    token: auth?.startsWith('Bearer ') ? auth.slice(7) : null,
  };
}

async function httpMember(handler: Handler): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const s = httpSeen(req);
      seen.push(s);
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      handler(
        s,
        {
          ok: (r, duplicate) => json(200, r, duplicate ? { 'x-quorate-duplicate': 'true' } : {}),
          value: (text, m) => {
            res.writeHead(200, {
              'x-quorate-version': String(m.version),
              'x-quorate-mod-index': String(m.modIndex),
              'x-quorate-read-index': String(m.readIndex),
            });
            res.end(text);
          },
          notFound: () => json(404, { error: { code: 'NOT_FOUND', message: 'no key' } }),
          error: (status, error, leader) =>
            json(status, { error }, leader ? { 'x-quorate-leader': leader } : {}),
          drop: () => res.socket?.destroy(),
        },
        seen.length,
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return { url, seen, close };
}

async function protocolMember(
  handler: Handler,
): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const reader = new FrameReader(1 << 20);
    let token: string | null = null;
    let hello = false;
    socket.on('data', (chunk: Buffer) => {
      for (const body of reader.push(chunk)) {
        const m = decodeBody(body) as Record<string, unknown>;
        if (!hello) {
          hello = true;
          token = typeof m.token === 'string' ? m.token : null;
          socket.write(
            encodeFrame({ t: 'hello', version: PROTOCOL_VERSION, nodeId: 'scripted', leaderId: null }),
          );
          continue;
        }
        const id = m.id as number;
        const s: Seen = {
          op: String(m.op),
          key: typeof m.key === 'string' ? m.key : null,
          expect: typeof m.expect === 'string' ? m.expect : null,
          cid: typeof m.cid === 'string' ? m.cid : null,
          seq: m.seq === undefined ? null : String(m.seq),
          timeoutMs: typeof m.timeoutMs === 'number' ? m.timeoutMs : null,
          token,
        };
        seen.push(s);
        const answer = (x: Record<string, unknown>) => {
          if (!socket.destroyed) socket.write(encodeFrame({ id, ...x }));
        };
        handler(
          s,
          {
            ok: (r, duplicate) => answer({ r: { ...r, duplicate: duplicate ?? false } }),
            value: (text, meta) => answer({ r: { found: true, value: Buffer.from(text), ...meta } }),
            notFound: () => answer({ r: { found: false } }),
            error: (status, error, leader) =>
              answer({ e: { status, ...error, ...(leader ? { leaderAddress: leader } : {}) } }),
            drop: () => socket.destroy(),
          },
          seen.length,
        );
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `quorate://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return { url, seen, close };
}

/** A port nothing listens on: bind one, note it, close it. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const written = { key: 'k', version: 1, modIndex: 7, index: 7, created: true };

describe.each<Kind>(['http', 'protocol'])('QuorateClient against scripted members, over %s', (kind) => {
  const member = async (handler: Handler) => {
    const m = kind === 'http' ? await httpMember(handler) : await protocolMember(handler);
    servers.push(m);
    return m;
  };
  /** Stop a scripted member for good: its port refuses connections from now on. */
  const closeMember = async (url: string) => {
    const i = servers.findIndex((s) => s.url === url);
    const [s] = servers.splice(i, 1);
    await s!.close();
  };
  const deadEndpoint = async () => `${kind === 'http' ? 'http' : 'quorate'}://127.0.0.1:${await deadPort()}`;
  const client = (
    endpoints: string[],
    extra: Partial<ConstructorParameters<typeof QuorateClient>[0]> = {},
  ) => {
    const c = new QuorateClient({ endpoints, backoff: { baseMs: 2, maxMs: 10 }, ...extra });
    clients.push(c);
    return c;
  };

  it('follows a not-leader hint to the leader and remembers it', async () => {
    const leader = await member((_r, reply) => reply.ok(written));
    const follower = await member((_r, reply) =>
      reply.error(421, { code: 'NOT_LEADER', message: 'not the leader', leaderId: 'n1' }, leader.url),
    );
    const c = client([follower.url]);
    const r = await c.put('k', 'v');
    expect(r.version).toBe(1);
    expect(r.duplicate).toBe(false);
    expect(c.knownLeader).toBe(leader.url);
    expect(follower.seen).toHaveLength(1);
    expect(leader.seen).toHaveLength(1);
    await c.put('k', 'w');
    expect(follower.seen).toHaveLength(1); // the second write went straight to the leader
    expect(leader.seen).toHaveLength(2);
  });

  it('retries a timed-out write with the same client id and sequence, and reports the duplicate', async () => {
    const leader = await member((_r, reply, n) => {
      if (n === 1) reply.error(504, { code: 'TIMEOUT', message: 'commit took too long' });
      else reply.ok(written, true);
    });
    const c = client([leader.url], { clientId: 'job-7' });
    const r = await c.put('k', 'v');
    expect(r.duplicate).toBe(true);
    const [a, b] = leader.seen;
    expect(a?.cid).toBe('job-7');
    expect(b?.cid).toBe('job-7');
    expect(a?.seq).toBe(b?.seq);
    // The next write takes the next sequence number.
    await c.put('k', 'w');
    expect(Number(leader.seen[2]?.seq)).toBe(Number(a?.seq) + 1);
  });

  it('a 4xx is a definite refusal: no retry, the server code and details are kept', async () => {
    const leader = await member((_r, reply) =>
      reply.error(412, { code: 'CAS_FAILED', message: 'value differs', current: { version: 3 } }),
    );
    const c = client([leader.url]);
    const err = await c.cas('k', 'old', 'new').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RejectedError);
    const r = err as RejectedError;
    expect(r.code).toBe('REJECTED');
    expect(r.serverCode).toBe('CAS_FAILED');
    expect(r.status).toBe(412);
    expect(r.ambiguous).toBe(false);
    expect(r.details.current).toEqual({ version: 3 });
    expect(leader.seen).toHaveLength(1);
    expect(leader.seen[0]).toMatchObject({ op: 'put', key: 'k', expect: 'old' });
  });

  it('every member refusing connections: unavailable, and definitely not applied', async () => {
    const c = client([await deadEndpoint(), await deadEndpoint()], { timeoutMs: 300 });
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as ClientError).ambiguous).toBe(false);
  });

  it('a connection dropped after the request was read leaves a write ambiguous', async () => {
    const leader = await member((_r, reply) => reply.drop());
    const c = client([leader.url], { timeoutMs: 300 });
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as ClientError).ambiguous).toBe(true);
    expect(leader.seen.length).toBeGreaterThanOrEqual(1);
    const seqs = new Set(leader.seen.map((s) => s.seq));
    expect(seqs.size).toBe(1); // every attempt carried the same identity
  });

  it('skips a dead member and reads from a live one; 404 is null, not an error', async () => {
    const live = await member((r, reply) => {
      if (r.key === 'missing') reply.notFound();
      else reply.value('hello', { version: 4, modIndex: 19, readIndex: 21 });
    });
    const c = client([await deadEndpoint(), live.url]);
    const v = await c.get('present');
    expect(v?.text()).toBe('hello');
    expect(v?.version).toBe(4);
    expect(v?.readIndex).toBe(21);
    expect(v?.servedBy).toBe(live.url);
    expect(await c.get('missing')).toBeNull();
  });

  it('no leader (503) is retried until one appears', async () => {
    const leader = await member((_r, reply, n) => {
      if (n <= 3) reply.error(503, { code: 'NO_LEADER', message: 'election in progress' });
      else reply.ok(written);
    });
    const c = client([leader.url]);
    expect((await c.put('k', 'v')).index).toBe(7);
    expect(leader.seen).toHaveLength(4);
  });

  it('sends the bearer token and the remaining deadline with each attempt', async () => {
    const leader = await member((_r, reply) => reply.ok(written));
    const c = client([leader.url], { token: 's3cret', timeoutMs: 5000 });
    await c.put('k', 'v');
    const h = leader.seen[0];
    expect(h?.token).toBe('s3cret');
    const t = Number(h?.timeoutMs);
    expect(t).toBeGreaterThan(0);
    expect(t).toBeLessThanOrEqual(5000);
  });

  it('redirects until the deadline (members pointing at each other) end with a definite NotLeader error', async () => {
    let a = '';
    let b = '';
    const ma = await member((_r, reply) => reply.error(421, { code: 'NOT_LEADER' }, b));
    const mb = await member((_r, reply) => reply.error(421, { code: 'NOT_LEADER' }, a));
    a = ma.url;
    b = mb.url;
    const c = client([a], { timeoutMs: 300 });
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect((err as ClientError).code).toBe('NOT_LEADER');
    expect((err as ClientError).ambiguous).toBe(false);
    // It kept trying for the whole deadline, without spinning.
    const tries = ma.seen.length + mb.seen.length;
    expect(tries).toBeGreaterThan(2);
    expect(tries).toBeLessThan(300);
  });

  it('sent, connection lost, then only redirects to the dead old leader: the write is ambiguous, never a definite failure', async () => {
    // The sequence of the bug: the leader reads the write (and may commit it) and dies;
    // the followers still name it as leader until they elect; the deadline passes.
    let oldLeader = '';
    const leader = await member((_r, reply) => reply.drop());
    oldLeader = leader.url;
    const follower = await member((_r, reply) =>
      reply.error(421, { code: 'NOT_LEADER', leaderId: 'n1' }, oldLeader),
    );
    const c = client([leader.url, follower.url], { timeoutMs: 400 });
    const first = c.put('k', 'v').catch((e: unknown) => e);
    await waitUntil(() => leader.seen.length > 0);
    // The old leader is gone for good: its port now refuses connections.
    await closeMember(leader.url);
    const err = await first;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as ClientError).ambiguous).toBe(true);
    expect(follower.seen.length).toBeGreaterThan(0);
  });

  it('redirects during an election are not failures: the write lands once a leader appears, with the same identity', async () => {
    let elected = false;
    const next = await member((_r, reply) => reply.ok(written, true));
    const follower = await member((_r, reply) =>
      elected
        ? reply.error(421, { code: 'NOT_LEADER', leaderId: 'n2' }, next.url)
        : reply.error(421, { code: 'NOT_LEADER', leaderId: null }),
    );
    const c = client([follower.url]);
    setTimeout(() => {
      elected = true;
    }, 200);
    const r = await c.put('k', 'v');
    expect(r.duplicate).toBe(true);
    expect(next.seen).toHaveLength(1);
    const seqs = new Set([...follower.seen, ...next.seen].map((s) => s.seq));
    expect(seqs.size).toBe(1);
  });

  it('a silent leader is abandoned once another member says it leads: the write is retried there within about silentLeaderMs', async () => {
    const paused = await member(() => {
      /* stopped (SIGSTOP): reads the request, never answers */
    });
    const next = await member((r, reply) => {
      if (r.op === 'health') reply.ok({ isLeader: true, leaderAddress: null, term: 7 });
      else reply.ok(written, true);
    });
    // One connection per member: the question to the paused member queues behind the
    // write it holds (as when many clients share a pool), and must not hold the probe up.
    const c = client([paused.url, next.url], {
      timeoutMs: 20_000,
      attemptTimeoutMs: 8000,
      silentLeaderMs: 100,
      wire: kind === 'http' ? new HttpWire({ connections: 1 }) : new ProtocolWire(),
    });
    const t0 = performance.now();
    const r = await c.put('k', 'v');
    // Done before the attempt on the paused member could have timed out.
    expect(performance.now() - t0).toBeLessThan(8000);
    expect(r.duplicate).toBe(true);
    expect(c.knownLeader).toBe(next.url);
    const writes = next.seen.filter((s) => s.op === 'put');
    expect(writes).toHaveLength(1);
    expect(writes[0]?.seq).toBe(paused.seen[0]?.seq);
  });

  it('a silent member that others still name as leader is waited for (a slow leader is not abandoned)', async () => {
    let slowUrl = '';
    const slow = await member((r, reply) => {
      if (r.op === 'health') reply.ok({ isLeader: true, leaderAddress: slowUrl, term: 3 });
      else setTimeout(() => reply.ok(written), 400);
    });
    slowUrl = slow.url;
    const other = await member((r, reply) => {
      if (r.op === 'health') reply.ok({ isLeader: false, leaderAddress: slowUrl, term: 3 });
      else reply.error(500, { code: 'INTERNAL' });
    });
    const c = client([slow.url, other.url], { silentLeaderMs: 50 });
    expect((await c.put('k', 'v')).duplicate).toBe(false);
    expect(other.seen.filter((s) => s.op === 'put')).toHaveLength(0);
    expect(slow.seen.filter((s) => s.op === 'put')).toHaveLength(1);
  });

  it('a retired sequence after an attempt that may have been applied is an unknown outcome, not a refusal', async () => {
    const leader = await member((_r, reply, n) => {
      if (n === 1) reply.error(504, { code: 'TIMEOUT', message: 'commit took too long' });
      else reply.error(409, { code: 'STALE_SEQUENCE', message: 'older than the window', highest: 9 });
    });
    const c = client([leader.url]);
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect((err as ClientError).ambiguous).toBe(true);
  });

  it('a refusal on the first attempt stays definite', async () => {
    const leader = await member((_r, reply) =>
      reply.error(409, { code: 'STALE_SEQUENCE', message: 'older than the window', highest: 9 }),
    );
    const err = await client([leader.url])
      .put('k', 'v')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RejectedError);
    expect((err as ClientError).ambiguous).toBe(false);
  });

  it('rejects bad endpoints at construction with a message saying what to pass', () => {
    expect(() => new QuorateClient({ endpoints: [] })).toThrow(/at least one/);
    expect(() => new QuorateClient({ endpoints: ['127.0.0.1:8081'] })).toThrow(/http/);
    expect(() => new QuorateClient({ endpoints: ['ftp://x'] })).toThrow(/quorate:\/\/ .* or http:\/\//);
    expect(
      () => new QuorateClient({ endpoints: ['quorate://127.0.0.1:9081', 'http://127.0.0.1:8081'] }),
    ).toThrow(/one form/);
  });
});

/** An HTTP member that never answers, for the wire tests below. */
async function silentHttp(): Promise<string> {
  const m = await httpMember(() => {});
  servers.push(m);
  return m.url;
}

describe('HttpWire', () => {
  it('marks a refused connection as never sent', async () => {
    const wire = new HttpWire();
    const err = await wire
      .request({
        endpoint: `http://127.0.0.1:${await deadPort()}`,
        method: 'GET',
        path: '/health',
        headers: {},
        timeoutMs: 500,
      })
      .catch((e: unknown) => e);
    await wire.close();
    expect(err).toBeInstanceOf(WireError);
    expect((err as WireError).sent).toBe(false);
  });

  it('marks a missing answer as a timeout that may have been sent', async () => {
    const url = await silentHttp();
    const wire = new HttpWire();
    const err = await wire
      .request({ endpoint: url, method: 'PUT', path: '/kv/k', headers: {}, body: 'v', timeoutMs: 100 })
      .catch((e: unknown) => e);
    await wire.close();
    expect(err).toBeInstanceOf(WireError);
    expect((err as WireError).sent).toBe(true);
    expect((err as WireError).timedOut).toBe(true);
  });
});

describe('ProtocolWire', () => {
  const op = { op: 'get' as const, key: 'k' };
  const req = (endpoint: string, timeoutMs = 500) => ({
    endpoint,
    method: 'GET' as const,
    path: '/kv/k',
    headers: {},
    timeoutMs,
    op,
  });

  it('marks a refused connection as never sent', async () => {
    const wire = new ProtocolWire();
    const err = await wire.request(req(`quorate://127.0.0.1:${await deadPort()}`)).catch((e: unknown) => e);
    await wire.close();
    expect(err).toBeInstanceOf(WireError);
    expect((err as WireError).sent).toBe(false);
  });

  it('marks a missing answer as a timeout that may have been sent', async () => {
    const m = await protocolMember(() => {});
    servers.push(m);
    const wire = new ProtocolWire();
    const err = await wire.request(req(m.url, 100)).catch((e: unknown) => e);
    await wire.close();
    expect(err).toBeInstanceOf(WireError);
    expect((err as WireError).sent).toBe(true);
    expect((err as WireError).timedOut).toBe(true);
  });

  it('carries many requests on one connection and matches answers given in any order', async () => {
    const pending: (() => void)[] = [];
    const m = await protocolMember((r, reply) => {
      // Hold every answer, then give them back to front.
      pending.push(() => reply.value(`v-${r.key}`, { version: 1, modIndex: 1, readIndex: 1 }));
      if (pending.length === 50) for (const answer of pending.reverse()) answer();
    });
    servers.push(m);
    const wire = new ProtocolWire();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        wire
          .request({ ...req(m.url, 5000), op: { op: 'get', key: `k${i}` } })
          .then((r) => Buffer.from(r.result!.value as Uint8Array).toString()),
      ),
    );
    await wire.close();
    expect(answers).toEqual(Array.from({ length: 50 }, (_, i) => `v-k${i}`));
    expect(m.seen).toHaveLength(50);
  });

  it('a member that refuses the hello answers every waiting request with its error, nothing sent', async () => {
    const sockets: Socket[] = [];
    const server = createNetServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.once('data', () =>
        s.end(encodeFrame({ t: 'error', code: 'UNAUTHORIZED', status: 401, message: 'wrong token' })),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push({
      url: '',
      close: () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
    });
    const c = new QuorateClient({
      endpoints: [`quorate://127.0.0.1:${(server.address() as AddressInfo).port}`],
    });
    clients.push(c);
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RejectedError);
    expect((err as RejectedError).serverCode).toBe('UNAUTHORIZED');
    expect((err as ClientError).ambiguous).toBe(false);
  });
});
