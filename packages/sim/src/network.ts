/**
 * The simulated network: each node's `Transport` (with snapshot streaming) over links
 * the seed makes slow, lossy, duplicating and reordering, and that partitions cut. A
 * message is delivered to the destination's current incarnation, if it is up and
 * listening; a paused process receives it when it resumes.
 */
import type { Message, NodeId, SnapshotRequest, SnapshotTransport, TransportHandler } from '@quorate/raft';
import type { SimProcess, World } from './world.js';

/** What the network needs from the simulation that owns it. */
export interface NetworkHost {
  /** Faults have stopped: no loss, no long delays. */
  readonly quiet: boolean;
  /** This run's loss rate, and the other per-message fault probabilities. */
  readonly dropRate: number;
  readonly duplicate: number;
  readonly slow: number;
  delivered(m: Message): void;
  snapshotSent(m: SnapshotRequest): void;
}

interface Endpoint {
  readonly proc: SimProcess;
  readonly handler: TransportHandler;
}

/** How long a receiver may take to store a snapshot before the sender gives up (virtual µs). */
const SNAPSHOT_STALL_US = 2_000_000;

export class SimNetwork {
  /** Cut links, `from>to`. */
  readonly cut = new Set<string>();
  private readonly endpoints = new Map<NodeId, Endpoint>();

  constructor(
    private readonly world: World,
    private readonly host: NetworkHost,
  ) {}

  attach(id: NodeId, proc: SimProcess, handler: TransportHandler): void {
    this.endpoints.set(id, { proc, handler });
  }

  detach(id: NodeId, proc: SimProcess): void {
    if (this.endpoints.get(id)?.proc === proc) this.endpoints.delete(id);
  }

  private isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** One-way latency in µs: usually 0.1–1.6 ms, sometimes long enough to reorder. */
  private latency(): number {
    const r = this.world.rnd;
    return !this.host.quiet && r.next() < this.host.slow ? 5_000 + r(60_000) : 100 + r(1_500);
  }

  send(m: Message, sender: SimProcess): void {
    const r = this.world.rnd;
    if (this.isCut(m.from, m.to)) {
      // A cut link looks like a refused or timed-out connection to the sender, sometimes.
      if (r.next() < 0.3) {
        this.world.after(1_000 + r(5_000), () =>
          sender.run(() => this.endpoints.get(m.from)?.handler.onUnreachable?.(m.to)),
        );
      }
      return;
    }
    if (!this.host.quiet && r.next() < this.host.dropRate) return;
    this.world.after(this.latency(), () => this.deliver(m));
    if (!this.host.quiet && r.next() < this.host.duplicate) {
      this.world.after(this.latency(), () => this.deliver(m));
    }
  }

  private deliver(m: Message): void {
    const ep = this.endpoints.get(m.to);
    if (!ep) return;
    ep.proc.run(() => {
      // The destination may have restarted or closed while this waited for a paused process.
      if (this.endpoints.get(m.to) !== ep) return;
      this.host.delivered(m);
      ep.handler.onMessage(m);
    });
  }

  /**
   * Stream a snapshot: the data is read from the sender's store, crosses the link after
   * a while (sometimes a long while), and the receiver's `onSnapshot` stores it. The
   * sender learns the outcome a link latency later, or after a stall timeout when the
   * receiver crashed or the link was cut meanwhile.
   */
  async sendSnapshot(m: SnapshotRequest, data: AsyncIterable<Uint8Array>, sender: SimProcess): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const c of data) chunks.push(c);
    const r = this.world.rnd;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null, afterUs: number): void => {
        if (settled) return;
        settled = true;
        this.world.after(afterUs, () => sender.run(() => (err ? reject(err) : resolve())));
      };
      const fail = (why: string, afterUs: number) =>
        settle(new Error(`snapshot to ${m.to}: ${why}`), afterUs);
      if (this.isCut(m.from, m.to) || (!this.host.quiet && r.next() < this.host.dropRate)) {
        fail('the link is down', 50_000);
        return;
      }
      this.host.snapshotSent(m);
      this.world.after(SNAPSHOT_STALL_US, () => fail('the receiver stalled', 0));
      const transfer = r.next() < 0.1 ? 50_000 + r(400_000) : 1_000 + r(20_000);
      this.world.after(transfer, () => {
        const ep = this.endpoints.get(m.to);
        if (!ep || this.isCut(m.from, m.to)) {
          fail('the receiver is unreachable', 1_000);
          return;
        }
        ep.proc.run(() => {
          const onSnapshot = ep.handler.onSnapshot;
          if (!onSnapshot) {
            fail('the receiver takes no snapshots', 1_000);
            return;
          }
          this.host.delivered(m);
          async function* stream(): AsyncIterable<Uint8Array> {
            for (const c of chunks) yield c;
          }
          onSnapshot(m, stream()).then(
            () => settle(null, this.latency()),
            (err: unknown) => fail(`refused: ${(err as Error)?.message ?? String(err)}`, this.latency()),
          );
        });
      });
    });
  }
}

/** One incarnation's transport. */
export class SimTransport implements SnapshotTransport {
  private open = false;

  constructor(
    private readonly net: SimNetwork,
    private readonly id: NodeId,
    private readonly proc: SimProcess,
  ) {}

  async start(handler: TransportHandler): Promise<void> {
    this.open = true;
    this.net.attach(this.id, this.proc, handler);
  }

  send(m: Message): void {
    if (this.open && this.proc.alive) this.net.send(m, this.proc);
  }

  sendSnapshot(m: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void> {
    if (!this.open) return Promise.reject(new Error('the transport is closed'));
    return this.net.sendSnapshot(m, data, this.proc);
  }

  async close(): Promise<void> {
    this.open = false;
    this.net.detach(this.id, this.proc);
  }
}
