/** The README examples that need a running cluster, run as users would: a real process. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LocalCluster } from '@quorate/loadgen';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runNode } from './helpers.js';

const require = createRequire(import.meta.url);
const clientDir = dirname(require.resolve('@quorate/client/package.json'));
let cluster: LocalCluster;
beforeAll(async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp' });
  await cluster.waitForLeader(20_000);
});
afterAll(async () => {
  await cluster?.stop();
});

it('the fenced-job example: one runner leads, a successor takes over, the old token is refused', async () => {
  const r = await runNode(
    ['--import', 'tsx', '--conditions=source', join(clientDir, 'examples', 'fenced-job.ts')],
    { cwd: clientDir, env: { QUORATE_ENDPOINTS: cluster.endpoints.join(',') }, timeoutMs: 60_000 },
  );
  expect(r.code, r.stderr).toBe(0);
  const first = /(\S+) runs the job with fencing token (\d+)/.exec(r.stdout);
  const second = /(\S+) took over with token (\d+)/.exec(r.stdout);
  expect(first, r.stdout).not.toBeNull();
  expect(second, r.stdout).not.toBeNull();
  expect(second![1]).not.toBe(first![1]);
  expect(Number(second![2])).toBeGreaterThan(Number(first![2]));
  expect(r.stdout).toMatch(/a late write with the old token \d+ is refused/);
});
