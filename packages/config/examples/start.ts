// Load a node's configuration the way `quorate start` does, and say what the node would do.
// Invalid settings: the problems go to stderr and the process exits with status 2.
import { describeSource, loadConfigOrExit, raftRuntimeOptions } from '@quorate/config';

const { config, sources } = await loadConfigOrExit({ argv: process.argv.slice(2), env: process.env });
const from = (key: string) => describeSource(sources.get(key) ?? { kind: 'default' });

console.log(
  `node ${config.nodeId} of ${config.members.map((m) => m.id).join(',')}: ` +
    `raft ${config.transport.kind} on ${config.transport.listen}, HTTP on ${config.http.listen}, ` +
    `data in ${config.storage.dataDir}`,
);
console.log(`heartbeat ${config.raft.heartbeatIntervalMs} ms (${from('raft.heartbeatIntervalMs')})`);
const opts = raftRuntimeOptions(config); // ready for new RaftNode({ ...opts, storage, transport, stateMachine })
console.log(`leader hints point to ${opts.addressOf(config.nodeId)}`);
