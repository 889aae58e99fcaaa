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

it('the dashboard and its event stream take the token as ?token= (a browser cannot set the header)', async () => {
  const url = c.url('n1');
  expect((await fetch(`${url}/`)).status).toBe(401);
  const page = await fetch(`${url}/?token=s3cret`);
  expect(page.status).toBe(200);
  expect(await page.text()).toMatch(/EventSource/);
  expect((await fetch(`${url}/?token=wrong`)).status).toBe(401);
  const ac = new AbortController();
  const events = await fetch(`${url}/cluster/events?token=s3cret`, { signal: ac.signal });
  expect(events.status).toBe(200);
  ac.abort();
  // Anywhere else the query is not enough: the token stays out of URLs that do writes.
  expect((await fetch(`${url}/kv/a?token=s3cret`, { method: 'PUT', body: 'x' })).status).toBe(401);
  expect((await fetch(`${url}/cluster/status?token=s3cret`)).status).toBe(401);
});
