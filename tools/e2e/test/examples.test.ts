/** The README examples that need a running cluster, run as users would: a real process. */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LocalCluster } from '@quorate/loadgen';
import { afterAll, beforeAll, expect, it } from 'vitest';

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

function runExample(file: string, env: Record<string, string>, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', file], {
      cwd: clientDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${file} did not finish within ${timeoutMs} ms\n${out}\n${err}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

it('the fenced-job example: one runner leads, a successor takes over, the old token is refused', async () => {
  const r = await runExample(join(clientDir, 'examples', 'fenced-job.ts'), {
    QUORATE_ENDPOINTS: cluster.endpoints.join(','),
  });
  expect(r.code, r.err).toBe(0);
  const first = /(\S+) runs the job with fencing token (\d+)/.exec(r.out);
  const second = /(\S+) took over with token (\d+)/.exec(r.out);
  expect(first, r.out).not.toBeNull();
  expect(second, r.out).not.toBeNull();
  expect(second![1]).not.toBe(first![1]);
  expect(Number(second![2])).toBeGreaterThan(Number(first![2]));
  expect(r.out).toMatch(/a late write with the old token \d+ is refused/);
});
