/**
 * The node's own ticker counts ticks against the clock: a timer that fires late (a busy
 * event loop) does not stretch every timeout measured in ticks, and a long stall does not
 * come back as a burst of ticks. Driven by a hand-moved clock and a hand-fired interval.
 */
import { describe, expect, it } from 'vitest';
import {
  MemoryStorage,
  type Message,
  RaftNode,
  type TimerProvider,
  type Transport,
  type TransportHandler,
} from '../src/index.js';
import { KV } from './helpers.js';

class Recorder implements Transport {
  readonly sent: Message[] = [];
  async start(_h: TransportHandler): Promise<void> {}
  send(m: Message): void {
    this.sent.push(m);
  }
  async close(): Promise<void> {}
}

/** A follower whose election timeout is 11 ticks of 10 ms (random 0), its clock and ticker by hand. */
async function follower() {
  let clock = 1000;
  let fire: (() => void) | null = null;
  const timers: TimerProvider = {
    now: () => clock,
    setInterval: (fn, ms) => {
      if (ms === 10) fire = fn; // the ticker; the deadline sweeper never fires here
      return ms;
    },
    clearInterval: () => {},
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    defer: (fn) => setImmediate(fn),
  };
  const t = new Recorder();
  const node = new RaftNode({
    id: 'n1',
    storage: new MemoryStorage(),
    transport: t,
    stateMachine: new KV(),
    members: ['n1', 'n2', 'n3'],
    timers,
    tickMs: 10,
    heartbeatIntervalMs: 30,
    electionTimeoutMs: 100,
    random: () => 0,
  });
  await node.start();
  const step = async (ms: number) => {
    clock += ms;
    fire!();
    await new Promise((r) => setImmediate(r));
  };
  const campaigned = () => t.sent.some((m) => m.type === 'preVote');
  return { node, step, campaigned };
}

describe("the node's own ticker", () => {
  it('runs the ticks due by the clock when its timer fires late', async () => {
    const f = await follower();
    // Each firing comes 15 ms after the last: 8 firings are 120 ms, 12 ticks due.
    for (let i = 0; i < 7; i++) await f.step(15);
    expect(f.campaigned()).toBe(false); // 105 ms: 10 ticks
    await f.step(15);
    expect(f.campaigned()).toBe(true); // 120 ms: 12 ticks, past the 11-tick timeout
    await f.node.stop();
  });

  it('runs at most 3 ticks for one firing after a stall, then keeps time again', async () => {
    const f = await follower();
    await f.step(1000); // a second's stall: 100 ticks due, 3 run, the rest dropped
    for (let i = 0; i < 7; i++) await f.step(10); // 10 ticks so far
    expect(f.campaigned()).toBe(false);
    await f.step(10); // 11
    expect(f.campaigned()).toBe(true);
    await f.node.stop();
  });

  it('never runs a tick ahead of the clock', async () => {
    const f = await follower();
    // Firings closer together than a tick (a timer's rounding): no tick runs early.
    for (let i = 0; i < 20; i++) await f.step(5); // 100 ms: 10 ticks
    expect(f.campaigned()).toBe(false);
    await f.step(10); // 110 ms: 11 ticks
    expect(f.campaigned()).toBe(true);
    await f.node.stop();
  });
});
