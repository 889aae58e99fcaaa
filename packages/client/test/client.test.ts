/**
 * The client's retry protocol, exercised over real HTTP against small scripted servers
 * (node:http on 127.0.0.1). The behaviour against a real cluster is covered in
 * apps/node/test/client.test.ts; here each server plays one situation a cluster can be in
 * — a follower pointing elsewhere, a leader that times out, a member that drops the
 * connection after reading the request — so that every branch of the loop is pinned.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClientError,
  HttpWire,
  OutcomeUnknownError,
  QuorateClient,
  RejectedError,
  TimeoutError,
  UnavailableError,
  WireError,
} from '../src/index.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: Seen, res: ServerResponse, n: number) => void;

const servers: Server[] = [];
const clients: QuorateClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  );
});

/** A scripted member: records every request and answers through `handler`. */
async function member(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(s);
      handler(s, res, seen.length);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** Stop a scripted member for good: its port refuses connections from now on. */
async function closeMember(url: string): Promise<void> {
  const i = servers.findIndex((s) => url.endsWith(`:${(s.address() as AddressInfo).port}`));
  const [s] = servers.splice(i, 1);
  s!.closeAllConnections();
  await new Promise<void>((r) => s!.close(() => r()));
}

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A port nothing listens on: bind one, note it, close it. */
async function deadEndpoint(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const written = { key: 'k', version: 1, modIndex: 7, index: 7, created: true };

function client(endpoints: string[], extra: Partial<ConstructorParameters<typeof QuorateClient>[0]> = {}) {
  const c = new QuorateClient({ endpoints, backoff: { baseMs: 2, maxMs: 10 }, ...extra });
  clients.push(c);
  return c;
}

describe('QuorateClient against scripted members', () => {
  it('follows a not-leader hint to the leader and remembers it', async () => {
    const leader = await member((_r, res) => send(res, 200, written));
    const follower = await member((_r, res) =>
      send(
        res,
        421,
        { error: { code: 'NOT_LEADER', message: 'not the leader', leaderId: 'n1' } },
        { 'x-quorate-leader': leader.url },
      ),
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
    const leader = await member((_r, res, n) => {
      if (n === 1) send(res, 504, { error: { code: 'TIMEOUT', message: 'commit took too long' } });
      else send(res, 200, written, { 'x-quorate-duplicate': 'true' });
    });
    const c = client([leader.url], { clientId: 'job-7' });
    const r = await c.put('k', 'v');
    expect(r.duplicate).toBe(true);
    const [a, b] = leader.seen;
    expect(a?.headers['x-quorate-client-id']).toBe('job-7');
    expect(b?.headers['x-quorate-client-id']).toBe('job-7');
    expect(a?.headers['x-quorate-seq']).toBe(b?.headers['x-quorate-seq']);
    // The next write takes the next sequence number.
    await c.put('k', 'w');
    expect(Number(leader.seen[2]?.headers['x-quorate-seq'])).toBe(Number(a?.headers['x-quorate-seq']) + 1);
  });

  it('a 4xx is a definite refusal: no retry, the server code and details are kept', async () => {
    const leader = await member((_r, res) =>
      send(res, 412, { error: { code: 'CAS_FAILED', message: 'value differs', current: { version: 3 } } }),
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
    expect(leader.seen[0]?.url).toBe('/kv/k?expect=old');
  });

  it('every member refusing connections: unavailable, and definitely not applied', async () => {
    const c = client([await deadEndpoint(), await deadEndpoint()], { timeoutMs: 300 });
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as ClientError).ambiguous).toBe(false);
  });

  it('a connection dropped after the request was read leaves a write ambiguous', async () => {
    const leader = await member((_r, res) => res.socket?.destroy());
    const c = client([leader.url], { timeoutMs: 300 });
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as ClientError).ambiguous).toBe(true);
    expect(leader.seen.length).toBeGreaterThanOrEqual(1);
    const seqs = new Set(leader.seen.map((s) => s.headers['x-quorate-seq']));
    expect(seqs.size).toBe(1); // every attempt carried the same identity
  });

  it('skips a dead member and reads from a live one; 404 is null, not an error', async () => {
    const live = await member((r, res) => {
      if (r.url.startsWith('/kv/missing'))
        send(res, 404, { error: { code: 'NOT_FOUND', message: 'no key' } });
      else {
        res.writeHead(200, {
          'x-quorate-version': '4',
          'x-quorate-mod-index': '19',
          'x-quorate-read-index': '21',
        });
        res.end('hello');
      }
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
    const leader = await member((_r, res, n) => {
      if (n <= 3) send(res, 503, { error: { code: 'NO_LEADER', message: 'election in progress' } });
      else send(res, 200, written);
    });
    const c = client([leader.url]);
    expect((await c.put('k', 'v')).index).toBe(7);
    expect(leader.seen).toHaveLength(4);
  });

  it('sends the bearer token and the remaining deadline with each attempt', async () => {
    const leader = await member((_r, res) => send(res, 200, written));
    const c = client([leader.url], { token: 's3cret', timeoutMs: 5000 });
    await c.put('k', 'v');
    const h = leader.seen[0]?.headers;
    expect(h?.authorization).toBe('Bearer s3cret');
    const t = Number(h?.['x-quorate-timeout-ms']);
    expect(t).toBeGreaterThan(0);
    expect(t).toBeLessThanOrEqual(5000);
  });

  it('redirects until the deadline (members pointing at each other) end with a definite NotLeader error', async () => {
    let a = '';
    let b = '';
    const ma = await member((_r, res) =>
      send(res, 421, { error: { code: 'NOT_LEADER' } }, { 'x-quorate-leader': b }),
    );
    const mb = await member((_r, res) =>
      send(res, 421, { error: { code: 'NOT_LEADER' } }, { 'x-quorate-leader': a }),
    );
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
    const leader = await member((_r, res) => res.socket?.destroy());
    oldLeader = leader.url;
    const follower = await member((_r, res) =>
      send(res, 421, { error: { code: 'NOT_LEADER', leaderId: 'n1' } }, { 'x-quorate-leader': oldLeader }),
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
    const next = await member((_r, res) => send(res, 200, written, { 'x-quorate-duplicate': 'true' }));
    const follower = await member((_r, res) =>
      elected
        ? send(res, 421, { error: { code: 'NOT_LEADER', leaderId: 'n2' } }, { 'x-quorate-leader': next.url })
        : send(res, 421, { error: { code: 'NOT_LEADER', leaderId: null } }),
    );
    const c = client([follower.url]);
    setTimeout(() => {
      elected = true;
    }, 200);
    const r = await c.put('k', 'v');
    expect(r.duplicate).toBe(true);
    expect(next.seen).toHaveLength(1);
    const seqs = new Set([...follower.seen, ...next.seen].map((s) => s.headers['x-quorate-seq']));
    expect(seqs.size).toBe(1);
  });

  it('a silent leader is abandoned once another member says it leads: the write is retried there within about silentLeaderMs', async () => {
    const paused = await member(() => {
      /* stopped (SIGSTOP): reads the request, never answers */
    });
    const next = await member((r, res) => {
      if (r.url === '/health') send(res, 200, { isLeader: true, leaderAddress: null, term: 7 });
      else send(res, 200, written, { 'x-quorate-duplicate': 'true' });
    });
    // One connection per member: the question to the paused member queues behind the
    // write it holds (as when many clients share a pool), and must not hold the probe up.
    const c = client([paused.url, next.url], {
      timeoutMs: 20_000,
      attemptTimeoutMs: 8000,
      silentLeaderMs: 100,
      wire: new HttpWire({ connections: 1 }),
    });
    const t0 = performance.now();
    const r = await c.put('k', 'v');
    // Done before the attempt on the paused member could have timed out.
    expect(performance.now() - t0).toBeLessThan(8000);
    expect(r.duplicate).toBe(true);
    expect(c.knownLeader).toBe(next.url);
    const writes = next.seen.filter((s) => s.method === 'PUT');
    expect(writes).toHaveLength(1);
    expect(writes[0]?.headers['x-quorate-seq']).toBe(paused.seen[0]?.headers['x-quorate-seq']);
  });

  it('a silent member that others still name as leader is waited for (a slow leader is not abandoned)', async () => {
    let slowUrl = '';
    const slow = await member((r, res) => {
      if (r.url === '/health') send(res, 200, { isLeader: true, leaderAddress: slowUrl, term: 3 });
      else setTimeout(() => send(res, 200, written), 400);
    });
    slowUrl = slow.url;
    const other = await member((r, res) => {
      if (r.url === '/health') send(res, 200, { isLeader: false, leaderAddress: slowUrl, term: 3 });
      else send(res, 500, { error: { code: 'INTERNAL' } });
    });
    const c = client([slow.url, other.url], { silentLeaderMs: 50 });
    expect((await c.put('k', 'v')).duplicate).toBe(false);
    expect(other.seen.filter((s) => s.method === 'PUT')).toHaveLength(0);
    expect(slow.seen.filter((s) => s.method === 'PUT')).toHaveLength(1);
  });

  it('a retired sequence after an attempt that may have been applied is an unknown outcome, not a refusal', async () => {
    const leader = await member((_r, res, n) => {
      if (n === 1) send(res, 504, { error: { code: 'TIMEOUT', message: 'commit took too long' } });
      else
        send(res, 409, { error: { code: 'STALE_SEQUENCE', message: 'older than the window', highest: 9 } });
    });
    const c = client([leader.url]);
    const err = await c.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect((err as ClientError).ambiguous).toBe(true);
  });

  it('a refusal on the first attempt stays definite', async () => {
    const leader = await member((_r, res) =>
      send(res, 409, { error: { code: 'STALE_SEQUENCE', message: 'older than the window', highest: 9 } }),
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
    expect(() => new QuorateClient({ endpoints: ['ftp://x'] })).toThrow(/http:\/\/ or https:\/\//);
  });
});

describe('HttpWire', () => {
  it('marks a refused connection as never sent', async () => {
    const wire = new HttpWire();
    const err = await wire
      .request({
        endpoint: await deadEndpoint(),
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
    const m = await member(() => {
      /* never answers */
    });
    const wire = new HttpWire();
    const err = await wire
      .request({ endpoint: m.url, method: 'PUT', path: '/kv/k', headers: {}, body: 'v', timeoutMs: 100 })
      .catch((e: unknown) => e);
    await wire.close();
    expect(err).toBeInstanceOf(WireError);
    expect((err as WireError).sent).toBe(true);
    expect((err as WireError).timedOut).toBe(true);
  });
});
