/** The options the config produces are the ones `RaftNode` takes, and a node runs on them. */
import {
  MemoryNetwork,
  MemoryStorage,
  RaftNode,
  type RaftNodeOptions,
  type StateMachine,
} from '@quorate/raft';
import { expect, it } from 'vitest';
import { defaults, raftRuntimeOptions, validate } from '../src/index.js';

class Noop implements StateMachine<null> {
  apply(): null {
    return null;
  }
}

it('a single node built from the default config elects itself and commits', async () => {
  const opts = raftRuntimeOptions(defaults());
  const typed: Omit<RaftNodeOptions<null>, 'storage' | 'transport' | 'stateMachine'> = opts;
  const node = new RaftNode<null>({
    ...typed,
    storage: new MemoryStorage(),
    transport: new MemoryNetwork().transport(opts.id),
    stateMachine: new Noop(),
  });
  await node.start();
  try {
    const deadline = performance.now() + 10_000;
    while (!node.isLeader && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(node.isLeader).toBe(true);
    await node.propose(new Uint8Array([1]));
    expect(node.status().commit).toBeGreaterThanOrEqual(2);
  } finally {
    await node.stop();
  }
});

it('maps the config fields to the runtime options', () => {
  const r = validate({ members: 'local:3', nodeId: 'n2', raft: { maxMsgBytes: 4096, preVote: false } });
  if (!r.ok) throw new Error('invalid');
  const o = raftRuntimeOptions(r.config);
  expect(o).toMatchObject({
    id: 'n2',
    members: ['n1', 'n2', 'n3'],
    raft: { maxSizePerMsg: 4096, preVote: false },
  });
  expect(o.addressOf('n3')).toBe('http://127.0.0.1:8083');
  expect(o.addressOf('zz')).toBeNull();
});
