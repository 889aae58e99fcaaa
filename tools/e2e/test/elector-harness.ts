/**
 * The LeaderElector e2e setup, shared: a real 3-node cluster, a fencing-aware store (it
 * refuses a token older than the newest it accepted), and instances of the example
 * service (`fixtures/elector-service.ts`) that log each unit of work.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type LocalClusterOptions } from '@quorate/loadgen';
import { expect } from 'vitest';
import { fencingBreaches, type LogLine, type StoreDecision, unitsIn } from './fencing.js';

export interface ElectorHarness {
  readonly cluster: LocalCluster;
  /** Every decision of the store, and the accepted ones, in order. */
  readonly decisions: StoreDecision[];
  readonly accepted: StoreDecision[];
  readonly services: Map<string, ChildProcess>;
  /** Start (or restart) the service instance `holder`. */
  start(holder: string): ChildProcess;
  /** What the services logged so far. */
  lines(): LogLine[];
  /** The promise over the units since `from` (ms since the epoch): no fencing breach. */
  assertFenced(from: number): ReturnType<typeof unitsIn>;
  /** Who did the last accepted unit of work. */
  currentHolder(): string | null;
  stop(): Promise<void>;
}

export async function electorHarness(
  ttlMs: number,
  renewMs: number,
  clusterOptions: Partial<LocalClusterOptions> = {},
): Promise<ElectorHarness> {
  const cluster = await LocalCluster.start({ n: 3, transport: 'tcp', ...clusterOptions });
  const dir = mkdtempSync(join(tmpdir(), 'quorate-elector-'));
  const logFile = join(dir, 'service.log');
  writeFileSync(logFile, '');
  const decisions: StoreDecision[] = [];
  const accepted: StoreDecision[] = [];
  let highest = 0;
  const store: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const { holder, token, unit } = JSON.parse(body) as { holder: string; token: number; unit: number };
      const d: StoreDecision = { holder, token, unit, at: Date.now(), accepted: token >= highest };
      decisions.push(d);
      if (!d.accepted) {
        res.writeHead(409).end();
        return;
      }
      highest = token;
      accepted.push(d);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => store.listen(0, '127.0.0.1', r));
  const storeUrl = `http://127.0.0.1:${(store.address() as { port: number }).port}`;
  const services = new Map<string, ChildProcess>();
  const start = (holder: string): ChildProcess => {
    const p = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions=source',
        join(import.meta.dirname, '..', 'fixtures', 'elector-service.ts'),
      ],
      {
        env: {
          ...process.env,
          ENDPOINTS: cluster.endpoints.join(','),
          HOLDER: holder,
          TTL_MS: String(ttlMs),
          RENEW_MS: String(renewMs),
          STORE: storeUrl,
          LOG: logFile,
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    services.set(holder, p);
    return p;
  };
  const lines = (): LogLine[] =>
    readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);
  for (const h of ['a', 'b', 'c']) start(h);
  return {
    cluster,
    decisions,
    accepted,
    services,
    start,
    lines,
    assertFenced(from) {
      const units = unitsIn(lines(), decisions, from);
      expect(fencingBreaches(units)).toEqual([]);
      return units;
    },
    currentHolder: () => accepted[accepted.length - 1]?.holder ?? null,
    async stop() {
      for (const p of services.values()) p.kill('SIGKILL');
      store.closeAllConnections();
      await new Promise<void>((r) => store.close(() => r()));
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
