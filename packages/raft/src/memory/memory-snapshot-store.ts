import type { SnapshotStore, SnapshotWriter } from '../contracts/storage.js';
import { RaftError, RaftErrorCode } from '../errors.js';
import type { SnapshotMeta } from '../types.js';

/** A `SnapshotStore` in memory, for tests and embedders. Keeps the latest snapshot only. */
export class MemorySnapshotStore implements SnapshotStore {
  private current: { meta: SnapshotMeta; chunks: Uint8Array[] } | null = null;

  latest(): SnapshotMeta | null {
    return this.current?.meta ?? null;
  }

  create(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const chunks: Uint8Array[] = [];
    let done = false;
    const writer: SnapshotWriter = {
      write: (chunk) => {
        if (done)
          return Promise.reject(
            new RaftError(RaftErrorCode.InvalidArgument, 'the snapshot writer is closed'),
          );
        chunks.push(chunk.slice());
        return Promise.resolve();
      },
      commit: () => {
        if (!done) {
          done = true;
          this.current = { meta, chunks };
        }
        return Promise.resolve();
      },
      abort: () => {
        done = true;
        return Promise.resolve();
      },
    };
    return Promise.resolve(writer);
  }

  async *read(meta: SnapshotMeta): AsyncIterable<Uint8Array> {
    const c = this.current;
    if (!c || c.meta.index !== meta.index || c.meta.term !== meta.term) {
      throw new RaftError(
        RaftErrorCode.Unavailable,
        `snapshot ${meta.term}/${meta.index} is not the latest (${c ? `${c.meta.term}/${c.meta.index}` : 'none'})`,
      );
    }
    for (const chunk of c.chunks) yield chunk;
  }
}
