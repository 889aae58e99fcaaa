/** The status page in a real browser (Debian's Chromium), against a real cluster. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '@quorate/loadgen';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium, waitFor } from './helpers.js';

let cluster: LocalCluster;
let browser: Browser;
const artifacts = join(import.meta.dirname, '..', 'test-artifacts');

beforeAll(async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp' });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
});

it('shows exactly one leader, then the new one after the leader is killed', async () => {
  const leader = (await cluster.waitForLeader(20_000))!;
  // Open the page on a follower, so the page's own server survives the kill.
  const follower = cluster.nodes.find((n) => n !== leader)!;
  const page = await browser.newPage();
  const openedAt = Date.now();
  await page.goto(`${follower.clientAddress}/`);
  await page.waitForFunction(() => document.querySelectorAll('tr[data-role="leader"]').length === 1, null, {
    timeout: 20_000,
  });
  expect(await page.locator('tr[data-role="leader"]').count()).toBe(1);
  expect(await page.locator('#leader').getAttribute('data-leader')).toBe(leader.id);
  // The chart has axes and data from the first status (the node kept the past), not
  // seconds later.
  expect(Number(await page.locator('#chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(1);
  expect(await page.locator('#chart-max').textContent()).toMatch(/^\d+$/);
  expect(await page.locator('#chart-min').textContent()).toMatch(/^\d+$/);
  expect(await page.locator('#chart-from').textContent()).toMatch(/s$/);
  // Leader changes carry the time the election happened (before the page was opened),
  // not the time the page loaded.
  const seen = await page.locator(`#events li[data-leader="${leader.id}"]`).first().getAttribute('data-at');
  expect(Number(seen)).toBeGreaterThan(0);
  expect(Number(seen)).toBeLessThanOrEqual(openedAt);
  // A page opened on a follower still shows every member's match index and lag (it
  // follows the leader's stream, which knows them).
  await page.waitForFunction(
    () => {
      const cells = Array.from(document.querySelectorAll('#members td.match, #members td.lag'));
      return cells.length >= 6 && cells.every((c) => /^\d+$/.test(c.textContent ?? ''));
    },
    null,
    { timeout: 20_000 },
  );
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'dashboard-first-minutes.png'), fullPage: true });
  cluster.kill(leader);
  await page.waitForFunction(
    (old) => {
      const l = document.querySelector('#leader') as HTMLElement | null;
      return !!l?.dataset.leader && l.dataset.leader !== old;
    },
    leader.id,
    { timeout: 20_000 },
  );
  const now = await page.locator('#leader').getAttribute('data-leader');
  expect(now).not.toBe(leader.id);
  // The member table follows a moment later (the dead leader's row is only marked once
  // its peers stop hearing from it): wait for it to show exactly one leader, the new one.
  await page.waitForFunction(
    (id) => {
      const rows = document.querySelectorAll('tr[data-role="leader"]');
      return rows.length === 1 && (rows[0] as HTMLElement).dataset.node === id;
    },
    now!,
    { timeout: 20_000 },
  );
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
  await waitFor(async () => (await cluster.leader())?.id === now, 'the cluster to agree');
  await cluster.restart(leader);
});

it('shows partition sets with their leaderless partitions and the partitions each member leads', async () => {
  const leader = await cluster.waitForLeader(20_000);
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${leader.clientAddress}${path}`, { method: 'POST', body: JSON.stringify(body) });
    expect(r.status, `${path}: ${await r.clone().text()}`).toBeLessThan(300);
    return (await r.json()) as { id?: number };
  };
  await post('/partitions', {
    name: 'orders',
    members: ['b1', 'b2', 'b3'],
    partitions: 6,
    replicationFactor: 2,
  });
  const page = await browser.newPage();
  await page.goto(leader.clientAddress);
  await page.waitForSelector('tr[data-set="orders"][data-leaderless="6"]', { timeout: 20_000 });
  for (const m of ['b1', 'b2']) {
    const s = await post('/sessions', { owner: m, ttlMs: 60_000 });
    await post('/partitions/orders/join', { member: m, session: s.id });
  }
  // b3 is not live: its preferred partitions (2 and 5: [b3, b1]) go to b1.
  const row = await page.waitForSelector('tr[data-set="orders"][data-leaderless="0"]', { timeout: 20_000 });
  expect(JSON.parse((await row.getAttribute('data-led'))!)).toEqual({ b1: 4, b2: 2, b3: 0 });
  expect(await row.textContent()).toContain('2 of 3');
  // The same counts in the metrics, one series per member (not per partition).
  const metrics = await (await fetch(`${leader.clientAddress}/metrics`)).text();
  expect(metrics).toMatch(/quorate_partitions_led\{member="b1"\} 4\n/);
  expect(metrics).toMatch(/quorate_partitions_led\{member="b3"\} 0\n/);
  expect(metrics).toMatch(/quorate_partitions_leaderless 0\n/);
  expect(metrics).toMatch(/quorate_sessions 2\n/);
  expect(metrics).toMatch(/quorate_partition_leader_changes_total [1-9]\d*\n/);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'dashboard-partitions.png'), fullPage: true });
  await page.close();
});
