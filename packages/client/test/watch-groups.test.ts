/**
 * `watch()` against sharded members, on both wires, with emulated members the test drives
 * by hand: what each watch asked for (`from`, `fromIndex`) and exactly what it is sent
 * back. The members keep the node's wire contract for a sharded watch (docs/sharding.md):
 *
 * - HTTP: `X-Quorate-Groups: G` on every answer; batch events `{group, index, changes}`,
 *   progress `{group, index}`, a `closed` event with `resumeFrom: "g:i,…"`, errors as
 *   `{error: {code, message, ...}}` (`410 COMPACTED` naming `group`);
 * - client protocol: the hello says `groups`; batches `{id, w: {group, index, changes}}`,
 *   progress `{id, p, g}`, a final `{id, e: {..., resumeFrom}}`;
 * - a sharded member refuses `fromIndex` with 400 `INVALID_ARGUMENT`; a member of one
 *   group ignores `from` and sends no group anywhere.
 */
import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClientError,
  decodeBody,
  encodeFrame,
  FrameReader,
  PROTOCOL_VERSION,
  QuorateClient,
  type WatchBatch,
  WatchCompactedError,
  type WatchOptions,
} from '../src/index.js';

type Kind = 'http' | 'protocol';

/** One watch a member received, and the means to answer it. */
interface WatchConn {
  readonly from: string | undefined;
  readonly fromIndex: number | undefined;
  batch(group: number | undefined, index: number, keys: string[]): void;
  progress(index: number, group?: number): void;
  /** Cut off as a slow watcher, with where to resume. */
  closed(resumeFrom: string | number): void;
  /** Refuse the watch before anything was sent. */
  refuse(status: number, code: string, message: string, extra?: Record<string, unknown>): void;
  /** The connection breaks. */
  drop(): void;
  /** Whether the client closed (or cancelled) this watch. */
  readonly ended: boolean;
}

interface Member {
  readonly url: string;
  /** Every watch received, in order. */
  readonly conns: WatchConn[];
  close(): Promise<void>;
}

const open: Member[] = [];
afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});

async function waitFor<T>(cond: () => T, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const change = (key: string) => ({
  type: 'put',
  key,
  value: Buffer.from(key).toString('base64'),
  version: 1,
});

async function httpMember(groups: number): Promise<Member> {
  const conns: WatchConn[] = [];
  const responses = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const sharding = groups > 1 ? { 'X-Quorate-Groups': String(groups) } : {};
    if (url.pathname !== '/watch') {
      res.writeHead(404, sharding).end();
      return;
    }
    const fromIndex = url.searchParams.get('fromIndex');
    if (groups > 1 && fromIndex !== null) {
      res
        .writeHead(400, { ...sharding, 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message: 'use from, not fromIndex' } }));
      return;
    }
    responses.add(res);
    let ended = false;
    res.on('close', () => {
      ended = true;
      responses.delete(res);
    });
    const head = () => {
      if (!res.headersSent) res.writeHead(200, { ...sharding, 'content-type': 'text/event-stream' });
    };
    const send = (chunk: string) => {
      if (ended) return;
      head();
      res.write(chunk);
    };
    conns.push({
      from: url.searchParams.get('from') ?? undefined,
      fromIndex: fromIndex === null ? undefined : Number(fromIndex),
      batch: (group, index, keys) =>
        send(
          `id: ${group === undefined ? index : `${group}:${index}`}\nevent: batch\ndata: ${JSON.stringify({ ...(group === undefined ? {} : { group }), index, changes: keys.map(change) })}\n\n`,
        ),
      progress: (index, group) =>
        send(
          `event: progress\ndata: ${JSON.stringify({ ...(group === undefined ? {} : { group }), index })}\n\n`,
        ),
      closed: (resumeFrom) => {
        send(
          `event: closed\ndata: ${JSON.stringify({ code: 'SLOW_WATCHER', message: 'slow', resumeFrom })}\n\n`,
        );
        res.end();
      },
      refuse: (status, code, message, extra = {}) =>
        res
          .writeHead(status, { ...sharding, 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code, message, ...extra } })),
      drop: () => res.socket?.destroy(),
      get ended() {
        return ended;
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const m: Member = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    conns,
    close: async () => {
      for (const r of responses) r.socket?.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  open.push(m);
  return m;
}

async function protocolMember(groups: number): Promise<Member> {
  const conns: WatchConn[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const reader = new FrameReader(1 << 20);
    let hello = false;
    const watches = new Map<number, { ended: boolean }>();
    const write = (m: Record<string, unknown>) => {
      if (!socket.destroyed) socket.write(encodeFrame(m));
    };
    socket.on('close', () => {
      for (const w of watches.values()) w.ended = true;
    });
    socket.on('data', (chunk: Buffer) => {
      for (const body of reader.push(chunk)) {
        const m = decodeBody(body) as Record<string, unknown>;
        if (!hello) {
          hello = true;
          write({
            t: 'hello',
            version: PROTOCOL_VERSION,
            nodeId: 'n1',
            leaderId: 'n1',
            leaderAddress: null,
            ...(groups > 1 ? { groups } : {}),
          });
          continue;
        }
        const id = m.id as number;
        if (m.op === 'health') {
          write({ id, r: { ok: true } });
          continue;
        }
        if (m.op === 'watch.cancel') {
          const w = watches.get(m.watchId as number);
          if (w) w.ended = true;
          write({ id, r: {} });
          continue;
        }
        if (m.op !== 'watch') continue;
        if (groups > 1 && m.fromIndex !== undefined) {
          write({ id, e: { code: 'INVALID_ARGUMENT', status: 400, message: 'use from, not fromIndex' } });
          continue;
        }
        const state = { ended: false };
        watches.set(id, state);
        const send = (x: Record<string, unknown>) => {
          if (!state.ended) write({ id, ...x });
        };
        conns.push({
          from: m.from as string | undefined,
          fromIndex: m.fromIndex as number | undefined,
          batch: (group, index, keys) =>
            send({
              w: {
                ...(group === undefined ? {} : { group }),
                index,
                changes: keys.map((key) => ({ type: 'put', key, value: Buffer.from(key), version: 1 })),
              },
            }),
          progress: (index, group) => send({ p: index, ...(group === undefined ? {} : { g: group }) }),
          closed: (resumeFrom) => {
            send({ e: { code: 'SLOW_WATCHER', status: 503, retryable: true, message: 'slow', resumeFrom } });
            state.ended = true;
          },
          refuse: (status, code, message, extra = {}) => {
            send({ e: { code, status, message, ...extra } });
            state.ended = true;
          },
          drop: () => socket.destroy(),
          get ended() {
            return state.ended;
          },
        });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const m: Member = {
    url: `quorate://127.0.0.1:${(server.address() as AddressInfo).port}`,
    conns,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  open.push(m);
  return m;
}

const member = (kind: Kind, groups: number) =>
  kind === 'http' ? httpMember(groups) : protocolMember(groups);

/** Runs a watch in the background, keeping what it delivers and how it ended. */
function collect(it: AsyncGenerator<WatchBatch>) {
  const got: WatchBatch[] = [];
  let error: unknown = null;
  const done = (async () => {
    try {
      for await (const b of it) got.push(b);
    } catch (err) {
      error = err;
    }
  })();
  return {
    got,
    done,
    get error() {
      return error;
    },
  };
}

const keysOf = (b: WatchBatch) =>
  b.changes.map((c) => (c.type === 'put' || c.type === 'delete' ? c.key : ''));

describe.each<Kind>(['http', 'protocol'])('watch on a sharded cluster (%s)', (kind) => {
  it('names each batch’s group and resumes on the next member from every group’s position', async () => {
    const a = await member(kind, 4);
    const b = await member(kind, 4);
    const client = new QuorateClient({ endpoints: [a.url, b.url] });
    const stop = new AbortController();
    const progress: [number, number | undefined][] = [];
    const w = collect(
      client.watch({ prefix: 'k', signal: stop.signal, onProgress: (i, g) => progress.push([i, g]) }),
    );
    const c1 = await waitFor(() => a.conns[0], 'the first watch');
    expect(c1.from).toBeUndefined();
    expect(c1.fromIndex).toBeUndefined();
    c1.progress(5, 0);
    c1.progress(7, 1);
    c1.progress(3, 2);
    c1.progress(9, 3);
    c1.batch(1, 8, ['k1']);
    c1.batch(2, 4, ['k2']);
    await waitFor(() => w.got.length >= 2, 'two batches');
    expect(progress).toEqual([
      [5, 0],
      [7, 1],
      [3, 2],
      [9, 3],
    ]);
    expect(w.got.map((x) => [x.group, x.index, keysOf(x)])).toEqual([
      [1, 8, ['k1']],
      [2, 4, ['k2']],
    ]);
    expect(w.got[0]!.resumeFrom).toEqual({ 0: 6, 1: 9, 2: 4, 3: 10 });
    expect(w.got[1]!.resumeFrom).toEqual({ 0: 6, 1: 9, 2: 5, 3: 10 });

    // The member goes away: the next one is asked for every group from where it stood.
    c1.drop();
    const c2 = await waitFor(() => b.conns[0], 'the resumed watch');
    expect(c2.from).toBe('0:6,1:9,2:5,3:10');
    expect(c2.fromIndex).toBeUndefined();
    c2.batch(3, 10, ['k3']);
    await waitFor(() => w.got.length >= 3, 'the third batch');
    expect(w.got[2]).toMatchObject({ group: 3, index: 10, resumeFrom: { 0: 6, 1: 9, 2: 5, 3: 11 } });

    // Cut off as a slow watcher: the member's resume point counts, never behind what was delivered.
    c2.closed('0:6,1:2,2:5,3:12');
    const c3 = await waitFor(() => a.conns[1], 'the watch after the cut-off');
    expect(c3.from).toBe('0:6,1:9,2:5,3:12');
    // Giving up ends the watch, even one waiting for its first message.
    stop.abort();
    await w.done;
    expect(w.error).toBeNull();
    await client.close();
  });

  it('refuses fromIndex with a typed error that says to use `from`', async () => {
    const a = await member(kind, 4);
    const client = new QuorateClient({ endpoints: [a.url] });
    const w = collect(client.watch({ prefix: 'k', fromIndex: 3 }));
    await w.done;
    expect(w.error).toBeInstanceOf(ClientError);
    expect(w.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(String((w.error as Error).message)).toMatch(/4 Raft groups.*`from`/);
    await client.close();
  });

  it('starts at `from`, and a compacted group names itself', async () => {
    const a = await member(kind, 4);
    const b = await member(kind, 4);
    const client = new QuorateClient({ endpoints: [a.url, b.url] });
    const w = collect(client.watch({ prefix: 'k', from: new Map([[2, 7]]) }));
    for (const m of [a, b]) {
      const c = await waitFor(() => m.conns[0], 'a watch');
      expect(c.from).toBe('2:7');
      c.refuse(410, 'COMPACTED', 'gone', { group: 2, oldestIndex: 40 });
    }
    await w.done;
    expect(w.error).toBeInstanceOf(WatchCompactedError);
    expect(w.error).toMatchObject({ group: 2, fromIndex: 7, oldestIndex: 40 });
    await client.close();
  });

  it('a cluster of one group: `from` for group 0 acts as fromIndex, batches carry no group', async () => {
    const a = await member(kind, 1);
    const client = new QuorateClient({ endpoints: [a.url] });
    const stop = new AbortController();
    const w = collect(client.watch({ prefix: 'k', from: { 0: 5 }, signal: stop.signal }));
    const c1 = await waitFor(() => a.conns[0], 'the first watch');
    expect(c1.from).toBe('0:5');
    // The member ignored `from` (it shows no group): the client watches again by index.
    c1.progress(9);
    const c2 = await waitFor(() => a.conns[1], 'the watch by index');
    expect(c2.fromIndex).toBe(5);
    expect(c2.from).toBeUndefined();
    await waitFor(() => c1.ended, 'the first watch to be closed');
    c2.batch(undefined, 5, ['k5']);
    await waitFor(() => w.got.length >= 1, 'the batch');
    expect(w.got[0]).toEqual({ index: 5, changes: [expect.objectContaining({ key: 'k5' })] });
    stop.abort();
    await w.done;
    expect(w.error).toBeNull();

    const other = collect(client.watch({ prefix: 'k', from: { 2: 5 } }));
    const c3 = await waitFor(() => a.conns[2], 'the watch naming group 2');
    c3.progress(9);
    await other.done;
    expect(other.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(String((other.error as Error).message)).toMatch(/group 2/);
    await client.close();
  });
});

describe('watch arguments', () => {
  it('refuses a bad `from`, or `from` with fromIndex, before contacting anyone', async () => {
    const client = new QuorateClient({ endpoints: ['http://127.0.0.1:9'] });
    const bad: WatchOptions[] = [
      { from: { 0: 0 } },
      { from: new Map([[-1, 3]]) },
      { from: { 0: 3 }, fromIndex: 3 },
    ];
    for (const opts of bad) {
      const w = collect(client.watch(opts));
      await w.done;
      expect(w.error).toBeInstanceOf(ClientError);
      expect(w.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await client.close();
  });
});
