/**
 * Transactions with real processes: concurrent transfers between five accounts, each a
 * transaction that moves money only if neither account changed since it was read, with
 * readers reading all five in one transaction, across a leader kill. Every read sees the
 * same total (a transaction applied in part would show), and so does the end state.
 */
import { QuorateClient, type TxnOpResult } from '@quorate/client';
import { LocalCluster, resolveNodeBin } from '@quorate/loadgen';
import { afterAll, expect, it } from 'vitest';
import { runNode, waitFor } from './helpers.js';

let cluster: LocalCluster | null = null;
const clients: QuorateClient[] = [];
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await cluster?.stop();
});

const ACCOUNTS = ['bank/a', 'bank/b', 'bank/c', 'bank/d', 'bank/e'];
const TOTAL = 500;
const balances = (rs: TxnOpResult[]) => rs.map((r) => (r.op === 'get' ? Number(r.value) : Number.NaN));

it('concurrent transfers and atomic reads across a leader kill never show money made or lost', async () => {
  cluster = await LocalCluster.start({ n: 3, transport: 'tcp' });
  const endpoints = cluster.nodes.map((n) => n.clientAddress);
  const client = () => {
    const c = new QuorateClient({ endpoints });
    clients.push(c);
    return c;
  };
  const setup = client();
  const init = await setup.txn({
    compare: ACCOUNTS.map((key) => ({ key, exists: false })),
    success: ACCOUNTS.map((key) => ({ op: 'put' as const, key, value: String(TOTAL / ACCOUNTS.length) })),
  });
  expect(init.succeeded).toBe(true);

  let stop = false;
  let transfers = 0;
  let refused = 0;
  const sums: number[] = [];
  const movers = Array.from({ length: 6 }, async (_, w) => {
    const c = client();
    for (let i = 0; !stop; i++) {
      const from = ACCOUNTS[(w + i) % 5]!;
      const to = ACCOUNTS[(w + 2 * i + 1) % 5]!;
      if (from === to) continue;
      try {
        const read = await c.txn({
          success: [
            { op: 'get', key: from },
            { op: 'get', key: to },
          ],
        });
        const [a, b] = read.results as Extract<TxnOpResult, { op: 'get' }>[];
        const amount = 1 + ((w + i) % 7);
        if (Number(a!.value) < amount) continue;
        const t = await c.txn({
          compare: [
            { key: from, version: a!.version },
            { key: to, version: b!.version },
          ],
          success: [
            { op: 'put', key: from, value: String(Number(a!.value) - amount) },
            { op: 'put', key: to, value: String(Number(b!.value) + amount) },
          ],
        });
        if (t.succeeded) transfers++;
        else refused++;
      } catch {
        // The leader was killed under it: exactly-once ids make a retry safe; move on.
      }
    }
  });
  const readers = Array.from({ length: 2 }, async () => {
    const c = client();
    while (!stop) {
      try {
        const r = await c.txn({ success: ACCOUNTS.map((key) => ({ op: 'get' as const, key })) });
        sums.push(balances(r.results).reduce((x, y) => x + y, 0));
      } catch {
        // during the kill
      }
    }
  });
  // Counts, not seconds: a loaded machine gets through fewer transfers in a given time.
  await waitFor(() => transfers >= 30 && sums.length >= 20, 'transfers before the kill', 60_000);
  const leader = await cluster.waitForLeader(30_000);
  cluster.kill(leader);
  const atKill = transfers;
  await waitFor(
    () => transfers >= Math.max(51, atKill + 20) && refused > 0 && sums.length > 50,
    'transfers after the kill',
    60_000,
  );
  stop = true;
  await Promise.all([...movers, ...readers]);

  expect(transfers).toBeGreaterThan(50);
  expect(refused).toBeGreaterThan(0); // transfers did contend
  expect(sums.length).toBeGreaterThan(50);
  expect(new Set(sums)).toEqual(new Set([TOTAL]));
  const end = await setup.txn({ success: ACCOUNTS.map((key) => ({ op: 'get' as const, key })) });
  expect(balances(end.results).reduce((x, y) => x + y, 0)).toBe(TOTAL);

  // The CLI runs a transaction too; a failed compare is exit status 4.
  const bin = resolveNodeBin();
  const ok = await runNode([
    bin,
    'kv',
    'txn',
    JSON.stringify({ success: [{ op: 'get', key: 'bank/a' }] }),
    '--endpoints',
    endpoints.join(','),
    '--json',
  ]);
  expect(ok.code, ok.stderr).toBe(0);
  expect(JSON.parse(ok.stdout)).toMatchObject({ succeeded: true });
  const no = await runNode([
    bin,
    'kv',
    'txn',
    JSON.stringify({ compare: [{ key: 'bank/a', version: 999999 }] }),
    '--endpoints',
    endpoints.join(','),
  ]);
  expect(no.code).toBe(4);
}, 180_000);
