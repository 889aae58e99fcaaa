/**
 * The client protocol's rules at the edge, one raw connection at a time against real
 * nodes (in-process Raft, real sockets): the hello and its version, the token, bad frames
 * and requests, the in-flight limit, pipelined answers, the WebSocket form on the same port.
 */
import { connect, type Socket } from 'node:net';
import { decodeBody, encodeFrame, FrameReader, PROTOCOL_WS_PATH } from '@quorate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

let c: InProcessCluster;
beforeAll(async () => {
  c = await inProcessCluster(3, 'tok-123');
  // The hello test asks a follower, which learns the leader from its first append.
  await c.settled();
});
afterAll(() => c.stop());

type Msg = Record<string, unknown>;

/** A raw connection: send frames, read the messages that come back, see it close. */
class Raw {
  readonly socket: Socket;
  private readonly reader = new FrameReader(1 << 24);
  readonly got: Msg[] = [];
  closed = false;
  private readonly closedP: Promise<void>;

  constructor(url: string) {
    const u = new URL(url);
    this.socket = connect({ host: u.hostname, port: Number(u.port) });
    this.socket.on('error', () => {});
    this.socket.on('data', (d: Buffer) => {
      for (const b of this.reader.push(d)) this.got.push(decodeBody(b) as Msg);
    });
    this.closedP = new Promise((r) =>
      this.socket.on('close', () => {
        this.closed = true;
        r();
      }),
    );
  }

  send(m: unknown): void {
    this.socket.write(encodeFrame(m));
  }

  async next(pred: (m: Msg) => boolean = () => true, ms = 5000): Promise<Msg> {
    return waitFor(() => this.got.find(pred) ?? null, 'an answer', ms);
  }

  async waitClosed(ms = 5000): Promise<void> {
    await Promise.race([
      this.closedP,
      new Promise((_, j) => setTimeout(() => j(new Error('not closed')), ms)),
    ]);
  }

  async hello(token = 'tok-123'): Promise<Msg> {
    this.send({ t: 'hello', versions: [1], token });
    return this.next((m) => m.t === 'hello' || m.t === 'error');
  }
}

const leaderUrl = () => c.protocolUrl(c.leader()!.id);
const followerUrl = () => c.protocolUrl(c.nodes.find((n) => !n.raft.isLeader)!.id);

describe('the client protocol at the edge', () => {
  it('hello: the member answers with the version, its id and the leader', async () => {
    const r = new Raw(followerUrl());
    const h = await r.hello();
    expect(h).toMatchObject({ t: 'hello', version: 1, leaderId: c.leader()!.id, leaderAddress: leaderUrl() });
    r.socket.destroy();
  });

  it('a version the member does not speak: an error naming the versions it does, then the connection closes', async () => {
    const r = new Raw(leaderUrl());
    r.send({ t: 'hello', versions: [7, 9], token: 'tok-123' });
    const e = await r.next();
    expect(e).toMatchObject({ t: 'error', code: 'UNSUPPORTED_VERSION', versions: [1] });
    await r.waitClosed();
  });

  it('a wrong or missing token, or a request before the hello: a typed error, then closed', async () => {
    for (const first of [
      { t: 'hello', versions: [1], token: 'wrong' },
      { t: 'hello', versions: [1] },
      { id: 1, op: 'get', key: 'k' },
    ]) {
      const r = new Raw(leaderUrl());
      r.send(first);
      const e = await r.next();
      expect(e.t).toBe('error');
      expect(['UNAUTHORIZED', 'HELLO_REQUIRED']).toContain(e.code);
      await r.waitClosed();
    }
  });

  it('a connection that never says hello is closed (HELLO_REQUIRED) after the hello timeout', async () => {
    const r = new Raw(leaderUrl());
    const e = await r.next((m) => m.t === 'error', 15_000);
    expect(e.code).toBe('HELLO_REQUIRED');
    await r.waitClosed();
  });

  it('bad frames: not msgpack, not a map, too large: a typed error, then closed', async () => {
    const cases: [Buffer, string][] = [
      [Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]), 'MALFORMED_FRAME'],
      [encodeFrame([1, 2, 3]), 'MALFORMED_FRAME'],
      [Buffer.from([0x7f, 0xff, 0xff, 0xff]), 'FRAME_TOO_LARGE'],
    ];
    for (const [bytes, code] of cases) {
      const r = new Raw(leaderUrl());
      await r.hello();
      r.socket.write(bytes);
      const e = await r.next((m) => m.t === 'error');
      expect(e.code).toBe(code);
      await r.waitClosed();
    }
  });

  it('bad requests are answered by id with typed errors and the connection stays usable', async () => {
    const r = new Raw(leaderUrl());
    await r.hello();
    r.send({ id: 1, op: 'frobnicate' });
    r.send({ id: 2, op: 'put', key: 7, value: 'x' });
    r.send({ id: 3, op: 'put', key: 'a\u0001b', value: 'x' });
    r.send({ id: 4, op: 'put', key: 'k', value: Buffer.alloc(2048) });
    r.send({ id: 5, op: 'put', key: 'k', value: 'x', cid: 'c', seq: -1 });
    r.send({ id: 6, op: 'get', key: 'k', timeoutMs: 0 });
    r.send({ id: 7, op: 'txn', compare: 'nope' });
    r.send({ id: 8, op: 'put', key: 'fine', value: 'ok' });
    const code = async (id: number) => ((await r.next((m) => m.id === id)).e as Msg | undefined)?.code;
    expect(await code(1)).toBe('UNKNOWN_OP');
    expect(await code(2)).toBe('INVALID_KEY');
    expect(await code(3)).toBe('INVALID_KEY');
    expect(await code(4)).toBe('VALUE_TOO_LARGE');
    expect(await code(5)).toBe('BAD_REQUEST');
    expect(await code(6)).toBe('INVALID_ARGUMENT');
    expect(await code(7)).toBe('BAD_REQUEST');
    expect((await r.next((m) => m.id === 8)).r).toMatchObject({ key: 'fine', version: 1 });
    // None of the refused ones reached the log.
    expect(c.leader()!.machine.get('k')).toBeUndefined();
    r.socket.destroy();
  });

  it('a follower answers writes NOT_LEADER with the leader id and its client-protocol address', async () => {
    const r = new Raw(followerUrl());
    await r.hello();
    r.send({ id: 1, op: 'put', key: 'x', value: 'y' });
    const e = (await r.next((m) => m.id === 1)).e as Msg;
    expect(e).toMatchObject({
      code: 'NOT_LEADER',
      status: 421,
      leaderId: c.leader()!.id,
      leaderAddress: leaderUrl(),
    });
    r.socket.destroy();
  });

  it('many requests in flight on one connection, each answered once by its id; past the limit, OVERLOADED', async () => {
    const r = new Raw(leaderUrl());
    await r.hello();
    // The test cluster allows 64 in flight per connection.
    for (let i = 1; i <= 200; i++) r.send({ id: i, op: 'put', key: `p${i % 7}`, value: `v${i}` });
    await waitFor(
      () => r.got.filter((m) => typeof m.id === 'number').length === 200 || null,
      '200 answers',
      10_000,
    );
    const answers = r.got.filter((m) => typeof m.id === 'number');
    expect(new Set(answers.map((m) => m.id)).size).toBe(200);
    const overloaded = answers.filter((m) => (m.e as Msg | undefined)?.code === 'OVERLOADED');
    const ok = answers.filter((m) => m.r);
    expect(ok.length).toBeGreaterThanOrEqual(64);
    expect(ok.length + overloaded.length).toBe(200);
    r.socket.destroy();
  });

  it('the WebSocket form on the same port: one message per frame body', async () => {
    const u = new URL(leaderUrl());
    const ws = new WebSocket(`ws://${u.host}${PROTOCOL_WS_PATH}`);
    const got: Msg[] = [];
    ws.on('message', (d: Buffer) => got.push(decodeBody(d) as Msg));
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    const body = (m: unknown) => encodeFrame(m).subarray(4);
    ws.send(body({ t: 'hello', versions: [1], token: 'tok-123' }));
    await waitFor(() => got.find((m) => m.t === 'hello') ?? null, 'hello');
    ws.send(body({ id: 1, op: 'put', key: 'ws', value: 'hi' }));
    ws.send(body({ id: 2, op: 'get', key: 'ws' }));
    const two = await waitFor(() => got.find((m) => m.id === 2) ?? null, 'the get');
    expect(Buffer.from((two.r as Msg).value as Uint8Array).toString()).toBe('hi');
    ws.close();
  });
});

describe('watch on the client protocol', () => {
  it('streams the backlog from an index, then live changes, multiplexed beside other requests; cancel stops it', async () => {
    const { QuorateClient } = await import('@quorate/client');
    const client = new QuorateClient({
      endpoints: c.members.map((m) => m.protocolAddress!),
      token: 'tok-123',
    });
    const first = await client.put('w/a', '1');
    await client.put('w/b', '2');
    await client.put('other', 'x');
    const stop = new AbortController();
    const seen: { index: number; keys: string[] }[] = [];
    const progress: number[] = [];
    const watching = (async () => {
      for await (const b of client.watch({
        prefix: 'w/',
        fromIndex: first.index,
        signal: stop.signal,
        onProgress: (i) => progress.push(i),
      }))
        seen.push({
          index: b.index,
          keys: b.changes.map((x) => (x.type === 'lease' ? x.name : x.type === 'partition' ? x.set : x.key)),
        });
    })();
    await waitFor(() => seen.length >= 2 || null, 'the backlog');
    const live = await client.put('w/c', '3');
    await client.delete('w/a');
    await waitFor(() => seen.length >= 4 || null, 'the live changes');
    expect(seen.map((s) => s.keys)).toEqual([['w/a'], ['w/b'], ['w/c'], ['w/a']]);
    expect(seen[0]!.index).toBe(first.index);
    expect(seen[2]!.index).toBe(live.index);
    expect(progress.length).toBeGreaterThan(0);
    stop.abort();
    await watching;
    await client.close();
  });

  it('streams partition leadership changes with `partitions`, and no key changes then', async () => {
    const { QuorateClient } = await import('@quorate/client');
    const http = new QuorateClient({ endpoints: c.members.map((m) => m.clientAddress), token: 'tok-123' });
    const client = new QuorateClient({
      endpoints: c.members.map((m) => m.protocolAddress!),
      token: 'tok-123',
    });
    await http.createPartitionSet({ name: 'pw', members: ['m1'], partitions: 2, replicationFactor: 1 });
    const session = await http.openSession('m1', 60_000);
    const stop = new AbortController();
    const seen: unknown[] = [];
    let live = false;
    const watching = (async () => {
      for await (const b of client.watch({
        partitions: 'pw',
        signal: stop.signal,
        onProgress: () => (live = true),
      }))
        seen.push(...b.changes);
    })();
    await waitFor(() => live || null, 'the watch to be live');
    await client.put('pw-key', 'x');
    await http.joinPartitionSet('pw', 'm1', session.id);
    await waitFor(() => seen.length >= 2 || null, 'the two partitions to get their leader');
    expect(seen).toEqual([
      {
        type: 'partition',
        set: 'pw',
        partition: 0,
        leader: 'm1',
        epoch: 1,
        leaderEpoch: 1,
        eligible: ['m1'],
      },
      {
        type: 'partition',
        set: 'pw',
        partition: 1,
        leader: 'm1',
        epoch: 1,
        leaderEpoch: 1,
        eligible: ['m1'],
      },
    ]);
    stop.abort();
    await watching;
    await client.close();
    await http.closeSession(session.id);
    await http.close();
  });

  it('bad arguments are refused by id; a raw watch streams progress and ends on its cancel', async () => {
    const r = new Raw(leaderUrl());
    await r.hello();
    r.send({ id: 1, op: 'watch', prefix: 7 });
    expect(((await r.next((m) => m.id === 1)).e as Msg).code).toBe('INVALID_ARGUMENT');
    r.send({ id: 2, op: 'watch', prefix: 'x', fromIndex: -3 });
    expect(((await r.next((m) => m.id === 2)).e as Msg).code).toBe('INVALID_ARGUMENT');
    // A watch and its cancel on a raw connection.
    r.send({ id: 3, op: 'watch', prefix: 'raw/' });
    await r.next((m) => m.id === 3 && typeof m.p === 'number');
    r.send({ id: 4, op: 'watch.cancel', watchId: 3 });
    expect((await r.next((m) => m.id === 4 && m.r !== undefined)).r).toEqual({ cancelled: true });
    expect((await r.next((m) => m.id === 3 && m.r !== undefined)).r).toEqual({ cancelled: true });
    r.socket.destroy();
  });
});
