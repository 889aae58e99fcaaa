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
import { LocalCluster, type LocalClusterOptions, type NetLab } from '@quorate/loadgen';
import { expect } from 'vitest';
import { fencingBreaches, type LogLine, type StoreDecision, unitsIn } from './fencing.js';

export interface ElectorHarness {
  readonly cluster: LocalCluster;
  /** Every decision of the store, and the accepted ones, in order. */
  readonly decisions: StoreDecision[];
  readonly accepted: StoreDecision[];
  readonly services: Map<string, ChildProcess>;
  /** Start (or restart) the service instance `holder`, with extra environment (e.g. a fake clock). */
  start(holder: string, env?: Record<string, string>): ChildProcess;
  /** What the services logged so far. */
  lines(): LogLine[];
  /** The promise over the units since `from` (ms since the epoch): no fencing breach. */
  assertFenced(from: number): ReturnType<typeof unitsIn>;
  /** Who did the last accepted unit of work. */
  currentHolder(): string | null;
  stop(): Promise<void>;
}

/**
 * With `clusterOptions.lab`, the members run in the lab's `n<i>` namespaces and each
 * service instance `x` in the lab's host `h<x>` (so a nemesis rule can cut one holder off
 * the cluster while it still reaches the store, which listens on the lab's gateway).
 * `serviceEnv` is the services' extra environment unless `start` is given another.
 */
export async function electorHarness(
  ttlMs: number,
  renewMs: number,
  clusterOptions: Partial<LocalClusterOptions> = {},
  serviceEnv: Record<string, string> = {},
): Promise<ElectorHarness> {
  const lab: NetLab | undefined = clusterOptions.lab;
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
      const { holder, token, unit, beliefAgeMs } = JSON.parse(body) as {
        holder: string;
        token: number;
        unit: number;
        beliefAgeMs?: number;
      };
      const at = Date.now();
      const d: StoreDecision = { holder, token, unit, at, accepted: token >= highest };
      if (beliefAgeMs !== undefined) d.believedAt = at - beliefAgeMs;
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
  const storeHost = lab?.gateway ?? '127.0.0.1';
  await new Promise<void>((r) => store.listen(0, storeHost, r));
  const storeUrl = `http://${storeHost}:${(store.address() as { port: number }).port}`;
  const services = new Map<string, ChildProcess>();
  const start = (holder: string, extraEnv: Record<string, string> = serviceEnv): ChildProcess => {
    const prefix = lab ? lab.prefix(`h${holder}`) : [];
    const p = spawn(
      prefix[0] ?? process.execPath,
      [
        ...prefix.slice(1),
        ...(prefix.length ? [process.execPath] : []),
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
          ...extraEnv,
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
