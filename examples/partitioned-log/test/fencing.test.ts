/**
 * The data plane's fencing, in one process: a leader's replica driven by fetches as its
 * followers would send them and by its member's events, with quorate's answers stubbed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type PartitionState, StaleEpochError, TimeoutError } from '@quorate/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Directory } from '../src/directory.js';
import { BrokerError } from '../src/errors.js';
import { follow } from '../src/follower.js';
import { PartitionLog } from '../src/log.js';
import { type FetchQuery, type LeadingAt, PartitionReplica } from '../src/replica.js';
import { type FetchAnswer, toWire } from '../src/wire.js';

const enc = (s: string) => new TextEncoder().encode(s);
const REPLICAS = ['a', 'b', 'c'];

/** quorate as far as a replica asks it: who leads partition 0, and where brokers are. */
function stubDirectory(state: { current: PartitionState }, urls: Record<string, string> = {}): Directory {
  return {
    leaderOf: async () => structuredClone(state.current),
    locate: async () => ({
      state: structuredClone(state.current),
      url: state.current.leader ? (urls[state.current.leader] ?? null) : null,
    }),
    address: async (id: string) => urls[id] ?? null,
    forget: () => {},
  } as unknown as Directory;
}

/** quorate's view of partition 0, led by `leader`. */
function quorate(leader: string | null, leaderEpoch: number, epoch: number, eligible = REPLICAS) {
  return { current: { partition: 0, leader, leaderEpoch, epoch, eligible, replicas: REPLICAS } };
}

function replica(
  self: string,
  directory: Directory,
  setEligible: (e: string[]) => Promise<PartitionState> = async () => {
    throw new Error('no change expected');
  },
) {
  return new PartitionReplica({
    self,
    partition: 0,
    replicas: REPLICAS,
    directory,
    maxLagMs: 60_000,
    ackTimeoutMs: 3000,
    maxWaitMs: 50,
    maxBatch: 100,
    setEligible,
    stillLeads: () => true,
    say: () => {},
  });
}

/** The member's `leading` event. */
function lead(r: PartitionReplica, at: LeadingAt, signal = new AbortController().signal): void {
  r.lead(at, signal);
}

const fetchQ = (replica: string, from: number, leaderEpoch: number, lastLeaderEpoch: number): FetchQuery => ({
  from,
  leaderEpoch,
  lastLeaderEpoch,
  replica,
  maxWaitMs: 10,
});

/** Wait (up to 10 s: a loaded machine) for `cond`. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!cond() && performance.now() < deadline) await new Promise((x) => setTimeout(x, 5));
}

async function appended(r: PartitionReplica, end: number): Promise<void> {
  await until(() => r.log.end >= end);
  expect(r.log.end).toBe(end);
}

let server: Server | null = null;
afterEach(async () => {
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = null;
});

describe('leader epochs fence a deposed leader', () => {
  it('acknowledges once every eligible replica has fetched past the record, at the leader epoch', async () => {
    const a = replica('a', stubDirectory(quorate('a', 3, 5)));
    lead(a, { leaderEpoch: 3, epoch: 5, eligible: REPLICAS });
    expect(a.status()).toMatchObject({ role: 'leader', leaderEpoch: 3, epoch: 5 });
    const produced = a.produce(enc('r0'), 3);
    await appended(a, 1);
    await a.fetch(fetchQ('b', 1, 3, 3), new AbortController().signal);
    expect(a.highWatermark).toBe(0); // c holds nothing yet
    await a.fetch(fetchQ('c', 1, 3, 3), new AbortController().signal);
    await expect(produced).resolves.toEqual({ partition: 0, offset: 0, leaderEpoch: 3 });
    expect(a.log.leaderEpochAt(0)).toBe(3);
    a.stop();
  });

  it('a follower that knows a newer leader epoch is answered FENCED and copies nothing; the leader steps down at once', async () => {
    const q = quorate('a', 3, 5);
    const a = replica('a', stubDirectory(q));
    lead(a, { leaderEpoch: 3, epoch: 5, eligible: REPLICAS });
    // quorate hands the partition to b at leader epoch 4; a has not heard (its member would, late).
    q.current = { ...q.current, leader: 'b', leaderEpoch: 4, epoch: 6, eligible: ['b', 'c'] };
    const produced = a.produce(enc('stale'), 3);
    await appended(a, 1);
    await a.fetch(fetchQ('b', 0, 3, 0), new AbortController().signal).catch(() => {}); // b, before it knew
    const fenced = await a.fetch(fetchQ('c', 0, 4, 0), new AbortController().signal).catch((e: unknown) => e);
    expect(fenced).toBeInstanceOf(BrokerError);
    expect(fenced).toMatchObject({ code: 'FENCED', details: { leaderEpoch: 3 } });
    // No need to ask quorate: a newer leader epoch means another leadership began.
    expect(a.status()).toMatchObject({ role: 'follower', knownLeaderEpoch: 4 });
    const err = await produced.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LEADERSHIP_LOST', outcome: 'unknown' });
    expect(a.highWatermark).toBe(0);
    a.stop();
  });

  it('an eligible-set change (newer epoch, same leader epoch) deposes nobody: the leader goes on with the new set', async () => {
    const a = replica('a', stubDirectory(quorate('a', 3, 5)));
    lead(a, { leaderEpoch: 3, epoch: 5, eligible: REPLICAS });
    // c's session lapsed: quorate dropped it at epoch 6. b's fetches still name leader epoch 3.
    await a.fetch(fetchQ('b', 0, 3, 0), new AbortController().signal);
    a.epochChanged(2, 9, ['a']); // of an older leadership: nothing to do with this one
    a.epochChanged(3, 6, ['a', 'b']); // the member's `epoch` event
    expect(a.status()).toMatchObject({ role: 'leader', leaderEpoch: 3, epoch: 6, eligible: ['a', 'b'] });
    const produced = a.produce(enc('r0'), 3);
    await appended(a, 1);
    await a.fetch(fetchQ('b', 1, 3, 3), new AbortController().signal);
    await expect(produced).resolves.toEqual({ partition: 0, offset: 0, leaderEpoch: 3 });
    a.stop();
  });

  it('a producer with a newer leader epoch deposes the leader, one with an older is refused; nothing written', async () => {
    const a = replica('a', stubDirectory(quorate('a', 3, 5)));
    lead(a, { leaderEpoch: 3, epoch: 5, eligible: REPLICAS });
    const older = await a.produce(enc('x'), 2).catch((e: unknown) => e);
    expect(older).toMatchObject({
      code: 'NOT_LEADER',
      outcome: 'not-written',
      details: { leader: 'a', leaderEpoch: 3 },
    });
    expect(a.status().role).toBe('leader');
    const newer = await a.produce(enc('y'), 4).catch((e: unknown) => e);
    expect(newer).toMatchObject({ code: 'NOT_LEADER', outcome: 'not-written', details: { leaderEpoch: 4 } });
    expect(a.log.end).toBe(0);
    expect(a.status().role).toBe('follower');
    // The member, not having heard yet, announces leader epoch 3 again (say, after a late
    // keep-alive): it is over, and not taken up.
    lead(a, { leaderEpoch: 3, epoch: 5, eligible: REPLICAS });
    expect(a.status().role).toBe('follower');
    a.stop();
  });

  it('a compare-and-set refused at an older epoch is dropped; the set the member then brings is taken as it is', async () => {
    const calls: string[][] = [];
    const answers: ((e: string[]) => Promise<PartitionState>)[] = [
      async () => {
        throw new StaleEpochError(409, 'stale', { leader: 'a', epoch: 6, leaderEpoch: 3 });
      },
      async (e) => ({ ...quorate('a', 3, 7, e).current }),
    ];
    const a = replica('a', stubDirectory(quorate('a', 3, 5, ['a', 'b'])), (e) => {
      calls.push(e);
      return answers.shift()!(e);
    });
    lead(a, { leaderEpoch: 3, epoch: 5, eligible: ['a', 'b'] });
    // c has everything (the log is empty): the leader asks to let it back in, at epoch 5.
    await a.fetch(fetchQ('c', 0, 3, 0), new AbortController().signal);
    a.tick();
    expect(a.status()).toMatchObject({ ackSet: ['a', 'b', 'c'] });
    await until(() => calls.length === 1 && (a.status().ackSet as string[]).length === 2);
    // Refused: quorate had dropped b meanwhile (its session lapsed). Not applied, ever.
    expect(a.status()).toMatchObject({ epoch: 5, eligible: ['a', 'b'], ackSet: ['a', 'b'] });
    a.epochChanged(3, 6, ['a']);
    expect(a.status()).toMatchObject({ epoch: 6, eligible: ['a'] });
    a.tick(); // again, at epoch 6, from the set as it is
    await until(() => a.status().epoch === 7);
    expect(calls).toEqual([
      ['a', 'b', 'c'],
      ['a', 'c'],
    ]);
    expect(a.status()).toMatchObject({ leaderEpoch: 3, epoch: 7, eligible: ['a', 'c'] });
    a.stop();
  });

  it('a compare-and-set with an unknown outcome is sent again at its epoch only: a newer epoch settles it', async () => {
    const calls: string[][] = [];
    const a = replica('a', stubDirectory(quorate('a', 3, 5, ['a', 'b'])), async (e) => {
      calls.push(e);
      throw new TimeoutError('no answer', true);
    });
    lead(a, { leaderEpoch: 3, epoch: 5, eligible: ['a', 'b'] });
    await a.fetch(fetchQ('c', 0, 3, 0), new AbortController().signal);
    a.tick();
    await until(() => calls.length >= 2);
    expect(calls.length).toBeGreaterThanOrEqual(2); // sent again: at epoch 5 it applies at most once
    // It applied: the member brings epoch 6 with c in. Nothing is sent after that.
    a.epochChanged(3, 6, ['a', 'b', 'c']);
    const sent = calls.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(calls.length).toBe(sent);
    expect(a.status()).toMatchObject({ epoch: 6, eligible: ['a', 'b', 'c'], ackSet: ['a', 'b', 'c'] });
    a.stop();
  });

  it('a restarted broker (its log in memory, gone) does not lead as the last eligible replica', async () => {
    const a = replica('a', stubDirectory(quorate('a', 9, 12, ['a'])));
    lead(a, { leaderEpoch: 9, epoch: 12, eligible: ['a'] });
    expect(a.status()).toMatchObject({ role: 'follower', synced: false });
    const err = await a.produce(enc('x'), 9).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NOT_LEADER', outcome: 'not-written' });
    a.stop();
  });

  it('a follower copies nothing from a leader older than the leader epoch it knows', async () => {
    // An old leader still answering at leader epoch 4, while quorate says 6 (it names the old one, stale).
    const answers: FetchAnswer[] = [];
    server = createServer((_req, res) => {
      const a: FetchAnswer = {
        type: 'entries',
        leaderEpoch: 4,
        highWatermark: 1,
        entries: [toWire({ offset: 0, leaderEpoch: 4, value: enc('from-the-past') })],
      };
      answers.push(a);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(a));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const q = {
      current: {
        partition: 0,
        leader: 'old',
        leaderEpoch: 6,
        epoch: 9,
        eligible: ['old', 'f'],
        replicas: ['old', 'f'],
      },
    };
    const log = new PartitionLog();
    let known = 0;
    const ctrl = new AbortController();
    const done = follow(
      {
        self: 'f',
        partition: 0,
        log,
        directory: stubDirectory(q, { old: url }),
        knownLeaderEpoch: () => known,
        learnLeaderEpoch: (e) => {
          known = Math.max(known, e);
        },
        learnHighWatermark: () => {},
        caughtUp: () => {},
        truncated: () => {},
        maxWaitMs: 10,
        relookupMs: 1000,
        say: () => {},
      },
      ctrl.signal,
    );
    await until(() => answers.length >= 3);
    ctrl.abort();
    await done;
    expect(answers.length).toBeGreaterThanOrEqual(3);
    expect(known).toBe(6);
    expect(log.end).toBe(0);
  });
});
