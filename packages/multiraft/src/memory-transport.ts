/**
 * An in-process network for `MemoryGroupTransport`s: many hosts in one process, for
 * tests, examples and embedders. Delivery is asynchronous and ordered per sender-receiver
 * pair; links can be cut; every message is counted by kind, so a test can watch idle
 * groups fall silent.
 */
import type {
  GroupId,
  GroupTransport,
  GroupTransportHandler,
  HostMessage,
  Message,
  NodeId,
  SnapshotRequest,
} from '@quorate/raft';

type Item =
  | { readonly kind: 'raft'; readonly group: GroupId; readonly msg: Message }
  | { readonly kind: 'host'; readonly from: NodeId; readonly to: NodeId; readonly msg: HostMessage };

export class MemoryGroupNetwork {
  private readonly handlers = new Map<NodeId, GroupTransportHandler>();
  private readonly cut = new Set<string>();
  /** Raft messages and host messages delivered so far. */
  raftDelivered = 0;
  hostDelivered = 0;

  transport(id: NodeId): MemoryGroupTransport {
    return new MemoryGroupTransport(this, id);
  }

  /** @internal */
  attach(id: NodeId, h: GroupTransportHandler): void {
    this.handlers.set(id, h);
  }

  /** @internal */
  detach(id: NodeId, h: GroupTransportHandler | null): void {
    if (this.handlers.get(id) === h) this.handlers.delete(id);
  }

  /** Drop everything from `a` to `b` (one way) until `heal`. */
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
  deliver(from: NodeId, to: NodeId, item: Item): void {
    if (this.cut.has(`${from}>${to}`)) return;
    const h = this.handlers.get(to);
    if (!h) {
      this.handlers.get(from)?.onUnreachable?.(to);
      return;
    }
    if (item.kind === 'raft') {
      this.raftDelivered++;
      h.onMessage(item.group, item.msg);
    } else {
      this.hostDelivered++;
      h.onHostMessage(from, item.msg);
    }
  }

  /** @internal */
  async deliverSnapshot(
    group: GroupId,
    msg: SnapshotRequest,
    data: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.cut.has(`${msg.from}>${msg.to}`)) throw new Error(`${msg.to} is unreachable`);
    const h = this.handlers.get(msg.to);
    if (!h?.onSnapshot) throw new Error(`${msg.to} is not listening for snapshots`);
    const chunks: Uint8Array[] = [];
    for await (const c of data) chunks.push(c.slice());
    async function* replay() {
      yield* chunks;
    }
    await h.onSnapshot(group, msg, replay());
  }
}

/** A `GroupTransport` inside one process: delivered on a later turn, in send order per peer. */
export class MemoryGroupTransport implements GroupTransport {
  private queue: { to: NodeId; item: Item }[] = [];
  private scheduled = false;
  private handler: GroupTransportHandler | null = null;

  constructor(
    private readonly network: MemoryGroupNetwork,
    readonly id: NodeId,
  ) {}

  start(handler: GroupTransportHandler): Promise<void> {
    this.handler = handler;
    this.network.attach(this.id, handler);
    return Promise.resolve();
  }

  send(group: GroupId, msg: Message): void {
    this.push(msg.to, { kind: 'raft', group, msg });
  }

  sendHost(to: NodeId, msg: HostMessage): void {
    this.push(to, { kind: 'host', from: this.id, to, msg });
  }

  sendSnapshot(group: GroupId, msg: SnapshotRequest, data: AsyncIterable<Uint8Array>): Promise<void> {
    if (!this.handler) return Promise.reject(new Error('the transport is closed'));
    return this.network.deliverSnapshot(group, msg, data);
  }

  close(): Promise<void> {
    this.network.detach(this.id, this.handler);
    this.handler = null;
    this.queue = [];
    return Promise.resolve();
  }

  private push(to: NodeId, item: Item): void {
    if (!this.handler) return;
    this.queue.push({ to, item });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    if (!this.handler) return;
    for (const { to, item } of q) this.network.deliver(this.id, to, item);
  }
}
