import type { SnapshotTransport, TransportHandler } from '../contracts/transport.js';
import type { Message, NodeId, SnapshotRequest } from '../types.js';

/**
 * An in-process network for `MemoryTransport`s: delivery is asynchronous and ordered per
 * sender-receiver pair, and links can be cut for tests.
 */
export class MemoryNetwork {
  private readonly handlers = new Map<NodeId, TransportHandler>();
  private readonly cut = new Set<string>();
  /** Messages delivered so far (for tests). */
  delivered = 0;

  transport(id: NodeId): MemoryTransport {
    return new MemoryTransport(this, id);
  }

  /** @internal */
  attach(id: NodeId, h: TransportHandler): void {
    this.handlers.set(id, h);
  }

  /** @internal */
  detach(id: NodeId): void {
    this.handlers.delete(id);
  }

  /** Drop messages from `a` to `b` (one way) until `heal`. */
  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
  }

  /** Cut `id` off from everyone, both ways. */
  isolate(id: NodeId, others: readonly NodeId[]): void {
    for (const o of others) {
      if (o === id) continue;
      this.cutLink(id, o);
      this.cutLink(o, id);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** @internal */
  async deliverSnapshot(msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.cut.has(`${msg.from}>${msg.to}`)) throw new Error(`${msg.to} is unreachable`);
    const h = this.handlers.get(msg.to);
    if (!h?.onSnapshot) throw new Error(`${msg.to} is not listening for snapshots`);
    // Copy the stream, as a wire would: the receiver gets its own chunks.
    const chunks: Uint8Array[] = [];
    for await (const c of data) chunks.push(c.slice());
    async function* replay() {
      yield* chunks;
    }
    await h.onSnapshot(msg, replay());
  }

  /** @internal */
  deliver(m: Message): void {
    if (this.cut.has(`${m.from}>${m.to}`)) return;
    const h = this.handlers.get(m.to);
    if (!h) {
      this.handlers.get(m.from)?.onUnreachable?.(m.to);
      return;
    }
    this.delivered++;
    h.onMessage(m);
  }
}

/**
 * A `Transport` inside one process, for tests, examples and embedders that run several
 * members in one process. Messages are delivered on a later turn, in send order.
 */
export class MemoryTransport implements SnapshotTransport {
  private queue: Message[] = [];
  private scheduled = false;
  private open = false;

  constructor(
    private readonly network: MemoryNetwork,
    readonly id: NodeId,
  ) {}

  start(handler: TransportHandler): Promise<void> {
    this.network.attach(this.id, handler);
    this.open = true;
    return Promise.resolve();
  }

  send(msg: Message): void {
    if (!this.open) return;
    this.queue.push(msg);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    if (!this.open) return;
    for (const m of q) this.network.deliver(m);
  }

  sendSnapshot(msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void> {
    if (!this.open) return Promise.reject(new Error('the transport is closed'));
    return this.network.deliverSnapshot(msg, data);
  }

  close(): Promise<void> {
    this.open = false;
    this.queue = [];
    this.network.detach(this.id);
    return Promise.resolve();
  }
}
