/**
 * The HTTP API over TLS with client certificates required: the client and the CLI with
 * the CA and a member certificate work (writes, linearizable reads, watch); a client
 * without a certificate, or with one from an authority the cluster does not trust, is
 * refused. Three real node processes, certificates made with openssl for the run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, QuorateClient } from '@quorate/client';
import { resolveNodeBin } from '@quorate/loadgen';
import { testPki } from '@quorate/transport-kit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, runNode, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'quorate-tls-'));
const bin = resolveNodeBin();
const procs: ChildProcess[] = [];
const urls: string[] = [];
/** The members' client-protocol addresses: TLS too (quorates://). */
const protocolUrls: string[] = [];
const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'member.crt'), key: join(dir, 'member.key') };
const foreign = { cert: join(dir, 'foreign.crt'), key: join(dir, 'foreign.key') };

beforeAll(async () => {
  const pki = testPki();
  writeFileSync(files.ca, pki.ca);
  writeFileSync(files.cert, pki.member.cert);
  writeFileSync(files.key, pki.member.key);
  writeFileSync(foreign.cert, pki.foreign.cert);
  writeFileSync(foreign.key, pki.foreign.key);
  const parts: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const url = `https://127.0.0.1:${await freePort()}`;
    const protocol = `quorates://127.0.0.1:${await freePort()}`;
    parts.push(`n${i}=127.0.0.1:${await freePort()}=${url}=${protocol}`);
    urls.push(url);
    protocolUrls.push(protocol);
  }
  for (let i = 1; i <= 3; i++) {
    const p = spawn(
      process.execPath,
      [
        bin,
        'start',
        '--members',
        parts.join(','),
        '--node-id',
        `n${i}`,
        '--cluster-id',
        'tls',
        '--storage.data-dir',
        join(dir, `n${i}`),
        '--log.level',
        'warn',
        '--stop-with-stdin',
        '--http.tls.enabled',
        'true',
        '--http.tls.cert-file',
        files.cert,
        '--http.tls.key-file',
        files.key,
        '--http.tls.ca-file',
        files.ca,
        '--http.tls.require-client-cert',
        'true',
      ],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    );
    procs.push(p);
  }
  const c = trusted();
  await waitFor(
    async () => (await c.put('tls/ready', 'yes')).index > 0,
    'the TLS cluster to take a write',
    60_000,
  );
  await c.close();
}, 120_000);

afterAll(async () => {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((done) => {
          if (p.exitCode !== null) return done();
          const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
          p.once('exit', () => {
            clearTimeout(t);
            done();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
});

function trusted(): QuorateClient {
  const pki = testPki();
  return new QuorateClient({
    endpoints: urls,
    tls: { ca: pki.ca, cert: pki.member.cert, key: pki.member.key },
  });
}

it('a client with the CA and a certificate writes, reads and watches over HTTPS', async () => {
  const c = trusted();
  try {
    const w = await c.put('tls/k', 'v1');
    expect((await c.get('tls/k'))?.text()).toBe('v1');
    const it = c.watch({ prefix: 'tls/', fromIndex: w.index });
    const first = await it.next();
    expect(first.value?.changes[0]).toMatchObject({ type: 'put', key: 'tls/k' });
    await it.return(undefined);
  } finally {
    await c.close();
  }
});

it('the client protocol over TLS (quorates://): writes, reads and watches with a certificate', async () => {
  const c = new QuorateClient({
    endpoints: protocolUrls,
    tls: { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) },
  });
  try {
    const w = await c.put('tls/p', 'v2');
    expect((await c.get('tls/p'))?.text()).toBe('v2');
    const it = c.watch({ prefix: 'tls/p', fromIndex: w.index });
    const first = await it.next();
    expect(first.value?.changes[0]).toMatchObject({ type: 'put', key: 'tls/p' });
    await it.return(undefined);
  } finally {
    await c.close();
  }
});

it('a client without a certificate, or with an untrusted one, is refused (HTTPS and the client protocol)', async () => {
  const pki = testPki();
  for (const [endpoints, tls] of [
    [urls, { ca: pki.ca }],
    [urls, { ca: pki.ca, cert: pki.foreign.cert, key: pki.foreign.key }],
    [protocolUrls, { ca: pki.ca }],
    [protocolUrls, { ca: pki.ca, cert: pki.foreign.cert, key: pki.foreign.key }],
  ] as const) {
    const c = new QuorateClient({ endpoints: [...endpoints], tls, timeoutMs: 2000 });
    try {
      const err = await c.get('tls/k', { timeoutMs: 2000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClientError);
    } finally {
      await c.close();
    }
  }
});

it('the CLI takes --cacert, --cert and --key; without a certificate it exits 1', async () => {
  const tlsArgs = ['--cacert', files.ca, '--cert', files.cert, '--key', files.key];
  const put = await runNode([
    bin,
    'kv',
    'put',
    'tls/cli',
    'ok',
    '--endpoints',
    urls.join(','),
    '--json',
    ...tlsArgs,
  ]);
  expect(put.code, put.stderr).toBe(0);
  const get = await runNode([
    bin,
    'kv',
    'get',
    'tls/cli',
    '--endpoints',
    urls.join(','),
    '--json',
    ...tlsArgs,
  ]);
  expect(JSON.parse(get.stdout)).toMatchObject({ value: 'ok' });
  const refused = await runNode(
    [bin, 'kv', 'get', 'tls/cli', '--endpoints', urls.join(','), '--cacert', files.ca],
    { timeoutMs: 60_000 },
  );
  expect(refused.code).toBe(1);
  // The admin commands and backups take the same options.
  const members = await runNode([bin, 'members', 'list', '--endpoints', urls[0]!, ...tlsArgs]);
  expect(members.code, members.stderr).toBe(0);
  expect(members.stdout.trim().split('\n')).toHaveLength(3);
  const saved = await runNode([
    bin,
    'snapshot',
    'save',
    join(dir, 'tls.backup'),
    '--endpoints',
    urls.join(','),
    '--json',
    ...tlsArgs,
  ]);
  expect(saved.code, saved.stderr).toBe(0);
  expect(JSON.parse(saved.stdout).index).toBeGreaterThan(0);
}, 120_000);
