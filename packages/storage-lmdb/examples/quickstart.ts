// Run: pnpm --filter @quorate/storage-lmdb exec tsx --conditions=source examples/quickstart.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EntryType } from '@quorate/raft';
import { isStorageError, LmdbStorage, StorageErrorCode } from '@quorate/storage-lmdb';

const dir = mkdtempSync(join(tmpdir(), 'quorate-example-'));
const text = new TextEncoder();
const conf = { voters: ['n1', 'n2', 'n3'], learners: [], votersOutgoing: [] };

// One node, one directory: the cluster and node ids are recorded and checked at every open.
const store = await LmdbStorage.open({ dir, clusterId: 'demo', nodeId: 'n1' });

// What the core's Ready asks to persist: entries and the hard state, in one fsynced commit.
await store.persist({
  snapshot: null,
  entries: [1, 2, 3].map((index) => ({
    index,
    term: 1,
    type: EntryType.Normal,
    data: text.encode(`set x=${index}`),
  })),
  hardState: { term: 1, vote: 'n1', commit: 3 },
});
console.log(`log ${store.firstIndex()}..${store.lastIndex()}, term(2) = ${store.term(2)}`);

// A snapshot of the state machine at index 2, streamed in chunks, then the log compacted behind it.
const meta = { index: 2, term: 1, conf };
const writer = await store.snapshots.create(meta);
await writer.write(text.encode('{"x":2}'));
await writer.commit();
await store.compact(2, meta);
console.log(`after compaction: log ${store.firstIndex()}..${store.lastIndex()}, term(2) = ${store.term(2)}`);

// Another store on the same directory is refused while this one is open.
try {
  await LmdbStorage.open({ dir, clusterId: 'demo', nodeId: 'n1' });
} catch (err) {
  if (isStorageError(err, StorageErrorCode.Locked)) console.log(`second open refused: ${err.code}`);
}

// A restart finds exactly what was committed.
await store.close();
const again = await LmdbStorage.open({ dir, clusterId: 'demo', nodeId: 'n1' });
const { hardState } = again.initialState();
const chunks: Uint8Array[] = [];
for await (const chunk of again.snapshots.read(again.snapshots.latest()!)) chunks.push(chunk);
console.log(
  `reopened: term ${hardState.term}, vote ${hardState.vote}, entry 3 = ${new TextDecoder().decode(again.entries(3, 4)[0]!.data)}`,
);
console.log(`snapshot ${again.snapshot().index}: ${new TextDecoder().decode(Buffer.concat(chunks))}`);

// A directory of another node is refused, never reset.
await again.close();
await LmdbStorage.open({ dir, clusterId: 'demo', nodeId: 'n2' }).catch((err) =>
  console.log(`n2 refused: ${err.code}`),
);
rmSync(dir, { recursive: true, force: true });
