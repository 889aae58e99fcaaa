/**
 * Coalesced heartbeats: the heartbeats and answers many awake groups send one peer in one
 * turn travel as one `beats` host message, and every group keeps its leader.
 */
import {
  type GroupTransport,
  type GroupTransportHandler,
  type HostMessage,
  MemoryStorage,
  type Message,
  type NodeId,
} from '@quorate/raft';
import { describe, expect, it } from 'vitest';
import { MemoryGroupNetwork, MultiRaftHost } from '../src/index.js';
import { Register, until } from './helpers.js';

const HEARTBEAT_MS = 50;

/** Counts every transport-level message a host sends, per peer, and what it carries. */
class CountingTransport implements GroupTransport {
  readonly perPeer = new Map<NodeId, number>();
  raft = 0;
  beats = 0;
  constructor(private readonly inner: GroupTransport) {}
  start(h: GroupTransportHandler): Promise<void> {
    return this.inner.start(h);
  }
  send(group: number, msg: Message): void {
    this.count(msg.to);
    this.raft++;
    this.inner.send(group, msg);
  }
  sendHost(to: NodeId, msg: HostMessage): void {
    this.count(to);
    if (msg.type === 'beats') this.beats++;
    this.inner.sendHost(to, msg);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  total(): number {
    let n = 0;
    for (const v of this.perPeer.values()) n += v;
    return n;
  }
  private count(to: NodeId): void {
    this.perPeer.set(to, (this.perPeer.get(to) ?? 0) + 1);
  }
}

interface Measured {
  /** Transport-level messages per directed peer pair per heartbeat interval. */
  perPeerPerInterval: number;
  termChanges: number;
  leaderChanges: number;
  beatsCoalesced: number;
  beatsMessages: number;
}

async function measure(groups: number, coalesceHeartbeats: boolean, windowMs: number): Promise<Measured> {
  const net = new MemoryGroupNetwork();
  const ids = ['h1', 'h2', 'h3'];
  const transports = new Map<NodeId, CountingTransport>();
  const hosts: MultiRaftHost[] = [];
  try {
    for (const id of ids) {
      const t = new CountingTransport(net.transport(id));
      transports.set(id, t);
      const h = new MultiRaftHost({
        id,
        transport: t,
        quiesce: false,
        coalesceHeartbeats,
        heartbeatIntervalMs: HEARTBEAT_MS,
        electionTimeoutMs: 300,
      });
      await h.start();
      hosts.push(h);
    }
    for (const h of hosts) {
      for (let g = 0; g < groups; g++) {
        await h.addGroup({
          group: g,
          storage: new MemoryStorage(),
          stateMachine: new Register(),
          members: ids,
        });
      }
    }
    const leaders = () =>
      Array.from({ length: groups }, (_, g) => hosts.find((h) => h.group(g)!.isLeader)?.id ?? null);
    await until('a leader in every group', () => leaders().every((l) => l !== null), 20_000);
    // Let the elections settle (followers learn their leader), then watch a window.
    await new Promise((r) => setTimeout(r, 300));
    const leadersBefore = leaders();
    const terms = () => hosts.flatMap((h) => Array.from({ length: groups }, (_, g) => h.group(g)!.term));
    const termsBefore = terms();
    const sentBefore = [...transports.values()].map((t) => t.total());
    const statsBefore = hosts.map((h) => h.stats());
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const elapsed = performance.now() - t0;
    const sent = [...transports.values()].reduce((n, t, i) => n + t.total() - sentBefore[i]!, 0);
    const termsAfter = terms();
    const leadersAfter = leaders();
    const statsAfter = hosts.map((h) => h.stats());
    const pairs = ids.length * (ids.length - 1);
    return {
      perPeerPerInterval: sent / pairs / (elapsed / HEARTBEAT_MS),
      termChanges: termsAfter.filter((t, i) => t !== termsBefore[i]).length,
      leaderChanges: leadersAfter.filter((l, i) => l !== leadersBefore[i]).length,
      beatsCoalesced: statsAfter.reduce(
        (n, s, i) => n + s.beatsCoalesced - statsBefore[i]!.beatsCoalesced,
        0,
      ),
      beatsMessages: statsAfter.reduce(
        (n, s, i) => n + s.beatsMessagesSent - statsBefore[i]!.beatsMessagesSent,
        0,
      ),
    };
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
  }
}

describe('coalesced heartbeats', () => {
  it('50 awake groups on 3 hosts send a few messages per peer per heartbeat interval, not one per group', async () => {
    const groups = 50;
    const before = await measure(groups, false, 1000);
    const after = await measure(groups, true, 1000);
    console.log(
      `per peer per ${HEARTBEAT_MS} ms heartbeat interval, ${groups} awake groups on 3 hosts: ` +
        `${before.perPeerPerInterval.toFixed(1)} messages one per beat, ` +
        `${after.perPeerPerInterval.toFixed(1)} coalesced ` +
        `(${after.beatsCoalesced} beats in ${after.beatsMessages} beats messages, ` +
        `${(after.beatsCoalesced / Math.max(1, after.beatsMessages)).toFixed(1)} per message)`,
    );
    // Without coalescing: a heartbeat per group led and an answer per group followed, each
    // way (≈ groups × 2/3 per peer per interval).
    expect(before.perPeerPerInterval).toBeGreaterThan(groups / 2);
    expect(before.beatsMessages).toBe(0);
    // Coalesced: a beats message per turn in which heartbeats were due (a leader's
    // heartbeat clock starts when it is elected, so the groups' heartbeats fall on up to
    // `heartbeatTicks` = 5 different ticks of an interval), and as many of answers, and the
    // liveness message: at most 2 × 5 + 1 per peer per interval, about a third of the
    // above here. (A loaded machine can split a turn, not merge ticks.)
    expect(after.perPeerPerInterval).toBeLessThan(before.perPeerPerInterval / 2);
    expect(after.beatsMessages).toBeGreaterThan(0);
    expect(after.beatsCoalesced / after.beatsMessages).toBeGreaterThan(2);
    // Every group keeps its leader through both windows.
    expect(before.termChanges).toBe(0);
    expect(after.termChanges).toBe(0);
    expect(after.leaderChanges).toBe(0);
  }, 120_000);

  it('keeps the messages to each peer in send order: anything else flushes the beats held before it', async () => {
    const sent: string[] = [];
    const transport: GroupTransport = {
      start: async () => {},
      send: (g, msg) => sent.push(`${msg.to} g${g} ${msg.type}`),
      sendHost: (to, msg) =>
        sent.push(
          msg.type === 'beats'
            ? `${to} beats ${msg.items.map((b) => `g${b.group} ${b.msg.type}`).join(', ')}`
            : `${to} ${msg.type}`,
        ),
      close: async () => {},
    };
    const h = new MultiRaftHost({ id: 'a', transport, quiesce: false });
    await h.start();
    try {
      // A group's view of the transport, as its node uses it (private: the order is the point).
      const view = (
        h as unknown as {
          viewFor(g: { id: number; quiesced: boolean; handler: null }): { send(m: Message): void };
        }
      ).viewFor({ id: 4, quiesced: false, handler: null });
      const hb = (to: string) =>
        ({ type: 'heartbeat', from: 'a', to, term: 1, commit: 0, readRound: 0 }) as const;
      view.send(hb('b'));
      view.send({ type: 'heartbeatResponse', from: 'a', to: 'b', term: 1, readRound: 0 });
      view.send(hb('c'));
      view.send({
        type: 'append',
        from: 'a',
        to: 'b',
        term: 1,
        prevIndex: 0,
        prevTerm: 0,
        commit: 0,
        entries: [],
      });
      view.send(hb('b'));
      // The append to b went out at once, after what was held for b; c's beat waits.
      expect(sent).toEqual(['b beats g4 heartbeat, g4 heartbeatResponse', 'b g4 append']);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      // At the end of the turn: a beat alone goes out as itself.
      expect(sent.slice(2).sort()).toEqual(['b g4 heartbeat', 'c g4 heartbeat']);
      expect(h.stats().beatsCoalesced).toBe(2);
      expect(h.stats().beatsMessagesSent).toBe(1);
    } finally {
      await h.stop();
    }
  });

  it('a beats message is dispatched item by item; an item not a beat between these hosts is dropped', async () => {
    let handler: GroupTransportHandler | null = null;
    const sent: { to: NodeId; msg: HostMessage | Message }[] = [];
    const transport: GroupTransport = {
      start: async (h) => {
        handler = h;
      },
      send: (_g, msg) => sent.push({ to: msg.to, msg }),
      sendHost: (to, msg) => sent.push({ to, msg }),
      close: async () => {},
    };
    const h = new MultiRaftHost({ id: 'a', transport, quiesce: false });
    await h.start();
    try {
      await h.addGroup({
        group: 1,
        storage: new MemoryStorage(),
        stateMachine: new Register(),
        members: ['a', 'b', 'c'],
      });
      const before = h.stats();
      const hb = (from: string, to: string) =>
        ({ type: 'heartbeat', from, to, term: 1, commit: 0, readRound: 0 }) as const;
      handler!.onHostMessage('b', {
        type: 'beats',
        items: [
          { group: 1, msg: hb('b', 'a') },
          // Not from the sender, not to this host, not a beat, not a hosted group.
          { group: 1, msg: hb('c', 'a') },
          { group: 1, msg: hb('b', 'c') },
          { group: 1, msg: { type: 'timeoutNow', from: 'b', to: 'a', term: 1 } as never },
          { group: 9, msg: hb('b', 'a') },
        ],
      });
      const after = h.stats();
      expect(after.hostMessagesReceived - before.hostMessagesReceived).toBe(1);
      // The good one and the unknown group's are received as Raft messages; the unknown
      // group's and the three bad items are dropped.
      expect(after.raftMessagesReceived - before.raftMessagesReceived).toBe(2);
      expect(after.messagesDropped - before.messagesDropped).toBe(4);
      expect(h.group(1)!.term).toBe(1);
      expect(h.group(1)!.leaderId).toBe('b');
      // The answer goes back alone (the only beat for b this turn): as itself.
      await until('the answer to b', () =>
        sent.some((s) => s.to === 'b' && (s.msg as Message).type === 'heartbeatResponse'),
      );
      expect(h.stats().beatsMessagesSent).toBe(0);
    } finally {
      await h.stop();
    }
  });
});
