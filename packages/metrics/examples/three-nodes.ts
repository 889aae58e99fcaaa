// Three members in one process with their metrics on one registry, served over HTTP:
// elect, write, scrape, and show a few series.
import { instrumentTransport, RaftMetrics, startMetricsServer } from '@quorate/metrics';
import { MemoryNetwork, MemoryStorage, RaftNode } from '@quorate/raft';

const metrics = new RaftMetrics(); // names prefixed quorate_, plus process metrics
const net = new MemoryNetwork();
const ids = ['n1', 'n2', 'n3'];
const nodes = ids.map((id) => {
  const transport = instrumentTransport(net.transport(id)); // counts messages for the metrics
  const node = new RaftNode({
    id,
    members: ids,
    storage: new MemoryStorage(),
    transport,
    stateMachine: { apply: () => null },
  });
  metrics.attach(node, { transport });
  return node;
});
await Promise.all(nodes.map((n) => n.start()));

const leaderId = await nodes[0]!.waitForLeader();
const leader = nodes.find((n) => n.id === leaderId)!;
for (let i = 0; i < 100; i++) await leader.propose(new TextEncoder().encode(`write ${i}`));

const server = await startMetricsServer(metrics.registry, { host: '127.0.0.1', port: 0 });
const text = await (await fetch(server.url)).text();
for (const line of text.split('\n')) {
  if (/^quorate_raft_(is_leader|proposals_total)\{/.test(line)) console.log(line);
}
await server.close();
await Promise.all(nodes.map((n) => n.stop()));
