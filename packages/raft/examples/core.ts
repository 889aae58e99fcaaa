// The core driven by hand, with no runtime: the README's "Using the core directly".
import { EntryType, MemoryStorage } from '@quorate/raft';
import { decodeConfChange, RaftCore, seededRandom } from '@quorate/raft/core';

// A founding member's store: its log starts with the membership (one committed entry).
const storage = new MemoryStorage({ voters: ['n1'], learners: [], votersOutgoing: [] });
const core = new RaftCore({ id: 'n1', random: seededRandom(1) }, storage);

const applied: string[] = [];
function drive() {
  while (core.hasReady()) {
    const rd = core.ready();
    // 1. send rd.messages now (none here: one node)
    // 2. persist, then acknowledge, then send what depended on it
    storage.persistSync(rd);
    core.persisted(rd);
    // 3. apply committed entries: membership changes to the core, the rest to your state
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) core.applyConfChange(decodeConfChange(e.data));
      else if (e.data.length > 0) applied.push(new TextDecoder().decode(e.data));
    }
    if (rd.committedEntries.length > 0) core.applied(rd.committedEntries.at(-1)!.index);
  }
}
drive(); // applies the founding membership: n1 learns it is the only voter
while (core.status().role !== 'leader') {
  core.tick(); // after an election timeout of ticks, it elects itself
  drive();
}
core.propose(new TextEncoder().encode('hello'));
drive();
console.log(core.status().role, applied); // leader [ 'hello' ]
