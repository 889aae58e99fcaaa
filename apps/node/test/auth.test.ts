import { afterAll, beforeAll, expect, it } from 'vitest';
import { type InProcessCluster, inProcessCluster, waitFor } from './helpers.js';

let c: InProcessCluster;
beforeAll(async () => {
  c = await inProcessCluster(1, 's3cret');
  await waitFor(() => c.leader(), 'a leader');
});
afterAll(() => c.stop());

it('with a token configured, requests need it (but liveness does not)', async () => {
  const url = c.url('n1');
  expect((await fetch(`${url}/health/live`)).status).toBe(200);
  const denied = await fetch(`${url}/kv/a`, { method: 'PUT', body: 'x' });
  expect(denied.status).toBe(401);
  expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  const ok = await fetch(`${url}/kv/a`, {
    method: 'PUT',
    body: 'x',
    headers: { authorization: 'Bearer s3cret' },
  });
  expect(ok.status).toBe(200);
});
