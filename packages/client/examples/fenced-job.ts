// Three instances of a job runner; exactly one runs the job, fenced by the lease's token.
// Needs a cluster: QUORATE_ENDPOINTS=http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083
import { LeaderElector, QuorateClient } from '@quorate/client';

/** A downstream store that refuses writes from a holder older than the newest it has seen. */
class FencedStore {
  private highest = 0;
  readonly accepted: string[] = [];
  write(token: number, what: string): boolean {
    if (token < this.highest) return false; // a stale leader: refused
    this.highest = token;
    this.accepted.push(`${token}:${what}`);
    return true;
  }
}

const endpoints = (process.env.QUORATE_ENDPOINTS ?? 'http://127.0.0.1:8081').split(',');
const store = new FencedStore();
const instances = ['worker-a', 'worker-b', 'worker-c'].map((holderId) => {
  const client = new QuorateClient({ endpoints });
  const elector = new LeaderElector({
    cluster: client,
    name: 'nightly-report',
    holderId,
    ttlMs: 2000,
    renewEveryMs: 500,
  });
  elector.runWhileLeader(async (signal, token) => {
    while (!signal.aborted) {
      // Check leadership right before each side effect, and send the fencing token.
      if (!elector.isLeader) break;
      if (!store.write(token, `${holderId} did a unit of work`)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  elector.start();
  return { holderId, client, elector };
});

const leader = async () => {
  for (;;) {
    const l = instances.find((i) => i.elector.isLeader);
    if (l) return l;
    await new Promise((r) => setTimeout(r, 20));
  }
};
const first = await leader();
const oldToken = first.elector.fencingToken!;
console.log(`${first.holderId} runs the job with fencing token ${oldToken}`);
await new Promise((r) => setTimeout(r, 500));
await first.elector.resign(); // hand over at once, e.g. on shutdown
const second = await leader();
console.log(`${second.holderId} took over with token ${second.elector.fencingToken}`);
await new Promise((r) => setTimeout(r, 300)); // the new holder does some work
// A late write from the old holder (say it was paused mid-write) carries the old token.
const late = store.write(oldToken, 'late work from the old holder');
console.log(`a late write with the old token ${oldToken} is ${late ? 'accepted' : 'refused'}`);
if (late) process.exitCode = 1;
for (const i of instances) {
  await i.elector.stop();
  await i.client.close();
}
