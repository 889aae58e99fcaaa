/**
 * Simulated disks. Each node has one `NodeDisk` that survives its crashes: a log store
 * (in memory, or any `LogStorage` a `SimStorage` provides, such as LMDB files) and the
 * latest committed snapshot. Each incarnation reaches it through `SimLog` and
 * `SimSnapshots`, which give writes latency: a write becomes durable at a time the seed
 * picks, and the process learns it a little later. A crash loses every write not yet
 * durable, and a snapshot being written is torn (the previous one stays, as the
 * store's atomic commit promises).
 */
import {
  type HardState,
  type InitialState,
  type LogStorage,
  MemoryStorage,
  type NodeId,
  type PersistBatch,
  RaftError,
  RaftErrorCode,
  type SnapshotMeta,
  type SnapshotStore,
  type SnapshotWriter,
} from '@quorate/raft';
import type { SimProcess, World } from './world.js';

/** Where nodes keep their durable log in the simulation. */
export interface SimStorage {
  /** A fresh, empty store for a node (the runtime bootstraps founding members itself). */
  create(id: NodeId): Promise<LogStorage> | LogStorage;
  /** The same node's store after a crash: exactly what was durably written. */
  reopen(id: NodeId, previous: LogStorage): Promise<LogStorage> | LogStorage;
  /** Clean up after the run. */
  dispose?(): Promise<void>;
}

export const memorySimStorage = (): SimStorage => ({
  create: () => new MemoryStorage(),
  reopen: (_id, previous) => previous,
});

/** What the disks report to the simulation. */
export interface DiskHost {
  durableHardState(id: NodeId, hs: HardState): void;
  durableBatch(id: NodeId, batch: PersistBatch): void;
  /** A snapshot write was torn by a crash. */
  snapshotTorn(id: NodeId): void;
}

export class NodeDisk {
  /** The latest committed snapshot and its data. */
  snapshot: { meta: SnapshotMeta; chunks: Uint8Array[] } | null = null;

  constructor(
    readonly id: NodeId,
    public log: LogStorage,
  ) {}
}

/** A write queue with latency: durable in call order, acknowledged in call order. */
class WriteQueue {
  private lastDurable = 0;
  private lastAck = 0;

  constructor(
    private readonly world: World,
    private readonly proc: SimProcess,
  ) {}

  /** `latencyUs` until `op` is durable; the process hears of it a little later. */
  submit(latencyUs: number, op: () => void | Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const at = Math.max(this.world.now + latencyUs, this.lastDurable + 1);
      this.lastDurable = at;
      this.world.at(at, async () => {
        if (!this.proc.alive) return; // crashed first: never reached the disk
        let err: unknown = null;
        try {
          await op();
        } catch (e) {
          err = e;
        }
        const ack = Math.max(this.world.now + this.world.rnd(300), this.lastAck + 1);
        this.lastAck = ack;
        this.world.at(ack, () => this.proc.run(() => (err ? reject(err) : resolve())));
      });
    });
  }
}

/** fsync latency: usually sub-millisecond to 2 ms, sometimes a slow disk; no fsync is quick. */
function persistLatency(world: World, sync: boolean): number {
  const r = world.rnd;
  if (!sync) return 20 + r(100);
  return r.next() < 0.05 ? 5_000 + r(20_000) : 50 + r(2_000);
}

/** One incarnation's view of its node's log store. */
export class SimLog implements LogStorage {
  private readonly queue: WriteQueue;

  constructor(
    private readonly disk: NodeDisk,
    private readonly world: World,
    proc: SimProcess,
    private readonly host: DiskHost,
  ) {
    this.queue = new WriteQueue(world, proc);
  }

  initialState(): InitialState {
    return this.disk.log.initialState();
  }
  firstIndex(): number {
    return this.disk.log.firstIndex();
  }
  lastIndex(): number {
    return this.disk.log.lastIndex();
  }
  term(index: number): number {
    return this.disk.log.term(index);
  }
  entries(lo: number, hi: number, maxBytes?: number) {
    return this.disk.log.entries(lo, hi, maxBytes);
  }
  snapshot(): SnapshotMeta {
    return this.disk.log.snapshot();
  }

  persist(batch: PersistBatch): Promise<void> {
    return this.queue.submit(persistLatency(this.world, batch.mustSync !== false), async () => {
      if (batch.hardState) this.host.durableHardState(this.disk.id, batch.hardState);
      this.host.durableBatch(this.disk.id, batch);
      await this.disk.log.persist(batch);
    });
  }

  compact(index: number, snapshot: SnapshotMeta): Promise<void> {
    return this.queue.submit(persistLatency(this.world, true), () => this.disk.log.compact(index, snapshot));
  }

  /** The disk outlives the process: closing an incarnation's view closes nothing. */
  async close(): Promise<void> {}
}

/** One incarnation's view of its node's snapshot store. */
export class SimSnapshots implements SnapshotStore {
  /** Writers of this incarnation not yet committed (a crash tears them). */
  open = 0;

  constructor(
    private readonly disk: NodeDisk,
    private readonly world: World,
    private readonly proc: SimProcess,
    private readonly host: DiskHost,
  ) {}

  latest(): SnapshotMeta | null {
    return this.disk.snapshot?.meta ?? null;
  }

  private later<T>(us: number, value: T): Promise<T> {
    return new Promise((resolve) => this.world.after(us, () => this.proc.run(() => resolve(value))));
  }

  create(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const chunks: Uint8Array[] = [];
    let state: 'open' | 'committing' | 'done' = 'open';
    this.open++;
    const close = () => {
      if (state !== 'done') this.open--;
      state = 'done';
    };
    const writer: SnapshotWriter = {
      write: (chunk) => {
        if (state !== 'open') {
          return Promise.reject(
            new RaftError(RaftErrorCode.InvalidArgument, 'the snapshot writer is closed'),
          );
        }
        chunks.push(chunk.slice());
        return this.later(this.world.rnd(200), undefined);
      },
      commit: () => {
        if (state !== 'open') return Promise.resolve();
        state = 'committing';
        // A small state takes milliseconds to write and sync; a large one, or a slow disk, hundreds.
        const r = this.world.rnd;
        const lat = r.next() < 0.3 ? 50_000 + r(300_000) : 1_000 + r(20_000);
        return new Promise<void>((resolve) => {
          this.world.after(lat, () => {
            if (!this.proc.alive) return; // torn: counted at the crash
            this.disk.snapshot = { meta, chunks };
            close();
            this.proc.run(resolve);
          });
        });
      },
      abort: () => {
        close();
        return Promise.resolve();
      },
    };
    return this.later(this.world.rnd(200), writer);
  }

  async *read(meta: SnapshotMeta): AsyncIterable<Uint8Array> {
    const c = this.disk.snapshot;
    if (!c || c.meta.index !== meta.index || c.meta.term !== meta.term) {
      throw new RaftError(
        RaftErrorCode.Unavailable,
        `snapshot ${meta.term}/${meta.index} is not the latest (${c ? `${c.meta.term}/${c.meta.index}` : 'none'})`,
      );
    }
    for (const chunk of c.chunks) yield chunk;
  }

  /** The process crashed: what it was writing is lost. */
  crashed(): void {
    for (let i = 0; i < this.open; i++) this.host.snapshotTorn(this.disk.id);
    this.open = 0;
  }
}
