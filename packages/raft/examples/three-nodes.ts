// Three members in one process, over the in-memory transport: elect, write, read, fail over.
import { MemoryNetwork, MemoryStorage, RaftNode, type StateMachine } from '@quorate/raft';

const dec = new TextDecoder();
class Counter implements StateMachine<number> {
  value = 0;
  apply(entry: { data: Uint8Array }): number {
    this.value += Number(dec.decode(entry.data));
    return this.value;
  }
}

const net = new MemoryNetwork();
const ids = ['n1', 'n2', 'n3'];
const counters = new Map(ids.map((id) => [id, new Counter()]));
const nodes = ids.map(
  (id) =>
    new RaftNode({
      id,
      members: ids,
      storage: new MemoryStorage(),
      transport: net.transport(id),
      stateMachine: counters.get(id)!,
    }),
);
await Promise.all(nodes.map((n) => n.start()));

// Who leads, as the first node sees it (waitForLeader also keeps the process alive).
const byId = (id: string) => nodes.find((n) => n.id === id)!;
let l = byId(await nodes[0]!.waitForLeader());
console.log(`leader: ${l.id}, total after +5: ${await l.propose(new TextEncoder().encode('5'))}`);

await l.stop(); // the leader goes away...
const survivor = nodes.find((n) => n !== l)!;
l = byId(await survivor.waitForLeader({ excluding: l.id })); // ...and another takes over
console.log(`new leader: ${l.id}, total after +2: ${await l.propose(new TextEncoder().encode('2'))}`);

const follower = nodes.find((n) => n !== l && n.status().running)!;
await follower.read(); // linearizable read on a follower
console.log(`${follower.id} reads ${counters.get(follower.id)!.value}`);

await Promise.all(nodes.map((n) => n.stop()));
