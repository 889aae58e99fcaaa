/**
 * One test per rule: each builds the mistake from a real source (file, variable or flag)
 * and checks the issue names the key, the source and the rule.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrorCode, formatIssue, loadConfig, validate } from '../src/index.js';
import { issuesOf, one, tempDir } from './helpers.js';

const three = 'local:3';

describe('timing', () => {
  it('rejects an election timeout shorter than three heartbeats', async () => {
    const issues = await issuesOf({
      env: { QUORATE_RAFT_HEARTBEAT_INTERVAL_MS: '60' },
      argv: ['--raft.election-timeout-ms', '150'],
    });
    const i = one(issues, 'election-timeout-vs-heartbeat');
    expect(i.key).toBe('raft.electionTimeoutMs');
    expect(i.source).toEqual({ kind: 'flag', name: '--raft.election-timeout-ms' });
    expect(i.message).toContain('env QUORATE_RAFT_HEARTBEAT_INTERVAL_MS');
    expect(i.message).toContain('at least 180 ms');
    // Exactly three heartbeats is enough.
    expect(validate({ raft: { heartbeatIntervalMs: 50, electionTimeoutMs: 150 } }).ok).toBe(true);
  });

  it('rejects a heartbeat interval shorter than a tick', async () => {
    const i = one(
      await issuesOf({ argv: ['--raft.tick-ms', '20', '--raft.heartbeat-interval-ms', '10'] }),
      'heartbeat-vs-tick',
    );
    expect(i.key).toBe('raft.heartbeatIntervalMs');
  });

  it('rejects a lease check interval not shorter than the shortest lease TTL', async () => {
    using t = tempDir();
    const file = t.write('q.yaml', 'leases:\n  minTtlMs: 100\n  checkIntervalMs: 100\n');
    const i = one(await issuesOf({ argv: ['-c', file] }), 'renewal-vs-ttl');
    expect(i.key).toBe('leases.checkIntervalMs');
    expect(i.source).toMatchObject({ kind: 'file', file, line: 3, column: 3 });
    expect(validate({ leases: { minTtlMs: 100, checkIntervalMs: 99 } }).ok).toBe(true);
  });

  it('rejects a minimum lease TTL above the maximum', async () => {
    const i = one(
      await issuesOf({ env: { QUORATE_LEASES_MIN_TTL_MS: '5000', QUORATE_LEASES_MAX_TTL_MS: '1000' } }),
      'min-above-max',
    );
    expect(i.source).toEqual({ kind: 'env', name: 'QUORATE_LEASES_MIN_TTL_MS' });
  });
});

describe('members', () => {
  it('rejects two members with the same id', async () => {
    using t = tempDir();
    const file = t.write(
      'q.yaml',
      [
        'members:',
        '  - { id: n1, peerAddress: "127.0.0.1:7001", clientAddress: "http://127.0.0.1:8081" }',
        '  - { id: n1, peerAddress: "127.0.0.1:7002", clientAddress: "http://127.0.0.1:8082" }',
      ].join('\n'),
    );
    const i = one(await issuesOf({ argv: ['--config', file] }), 'duplicate-member-id');
    expect(i.key).toBe('members[1].id');
    expect(i.source).toMatchObject({ kind: 'file', line: 3, column: 7 });
  });

  it('rejects two members with the same peer or client address', async () => {
    const issues = await issuesOf({
      env: {
        QUORATE_MEMBERS:
          'n1=127.0.0.1:7001=http://127.0.0.1:8081,n2=127.0.0.1:7001=http://localhost:8082,n3=127.0.0.1:7003=http://LOCALHOST:8082',
      },
    });
    const dup = issues.filter((i) => i.rule === 'duplicate-member-address');
    expect(dup.map((i) => i.key)).toEqual(['members[1].peerAddress', 'members[2].clientAddress']);
    expect(dup[0]!.source).toEqual({ kind: 'env', name: 'QUORATE_MEMBERS' });
  });

  it('rejects a node whose own id is not among the members', async () => {
    const i = one(await issuesOf({ argv: ['--members', three, '--node-id', 'n4'] }), 'self-not-member');
    expect(i.key).toBe('nodeId');
    expect(i.source).toEqual({ kind: 'flag', name: '--node-id' });
    expect(i.message).toContain('n1, n2, n3');
  });
});

describe('addresses', () => {
  it('rejects ports out of range, in members and listeners alike', async () => {
    const issues = await issuesOf({
      argv: [
        '--members',
        'n1=127.0.0.1:0=http://127.0.0.1:8081',
        '--http.listen',
        '127.0.0.1:65536',
        '--metrics.listen',
        '127.0.0.1:0',
      ],
    });
    const ports = issues.filter((i) => i.rule === 'port-range');
    expect(ports.map((i) => i.key).sort()).toEqual(['http.listen', 'members[0].peerAddress']);
    expect(ports.find((i) => i.key === 'http.listen')!.message).toContain('65536');
    // Port 0 is fine for a listener (the OS picks), not for an address peers dial.
    expect(validate({ http: { listen: '127.0.0.1:0' }, metrics: { listen: '127.0.0.1:0' } }).ok).toBe(true);
    const url = validate({
      members: [{ id: 'n1', peerAddress: '127.0.0.1:7001', clientAddress: 'http://127.0.0.1:70000' }],
    });
    expect(url.ok ? [] : url.issues.map((i) => [i.key, i.rule])).toEqual([
      ['members[0].clientAddress', 'port-range'],
    ]);
  });

  it('rejects two listeners on one address', async () => {
    const i = one(await issuesOf({ argv: ['--http.listen', '127.0.0.1:7001'] }), 'listen-conflict');
    expect(i.key).toBe('http.listen');
    expect(i.message).toContain('transport.listen');
    const wild = one(await issuesOf({ argv: ['--metrics.listen', '0.0.0.0:8081'] }), 'listen-conflict');
    expect(wild.key).toBe('metrics.listen');
  });
});

describe('TLS', () => {
  it('requires certificate, key and CA once TLS is on', async () => {
    const issues = await issuesOf({ argv: ['--transport.tls.enabled'] });
    expect(issues.filter((i) => i.rule === 'tls-incomplete').map((i) => i.key)).toEqual([
      'transport.tls.certFile',
      'transport.tls.keyFile',
      'transport.tls.caFile',
    ]);
  });

  it('rejects TLS files that cannot be read, naming each', async () => {
    using t = tempDir();
    const cert = t.write('node.pem', '-----BEGIN CERTIFICATE-----\n');
    const dir = join(t.dir, 'a-directory');
    mkdirSync(dir);
    const issues = await issuesOf({
      env: {
        QUORATE_TRANSPORT_TLS_ENABLED: 'true',
        QUORATE_TRANSPORT_TLS_CERT_FILE: cert,
        QUORATE_TRANSPORT_TLS_KEY_FILE: join(t.dir, 'missing.key'),
      },
      argv: ['--transport.tls.ca-file', dir],
    });
    const bad = issues.filter((i) => i.rule === 'file-unreadable');
    expect(bad.map((i) => [i.key, i.source])).toEqual([
      ['transport.tls.keyFile', { kind: 'env', name: 'QUORATE_TRANSPORT_TLS_KEY_FILE' }],
      ['transport.tls.caFile', { kind: 'flag', name: '--transport.tls.ca-file' }],
    ]);
    expect(bad[0]!.message).toContain('ENOENT');
    expect(bad[1]!.message).toContain('EISDIR');
  });
});

describe('unknown keys', () => {
  it('rejects unknown keys in the file, with a suggestion and the line', async () => {
    using t = tempDir();
    const file = t.write('q.yaml', 'raft:\n  heartbeatIntervalMS: 40\nhttps:\n  listen: 127.0.0.1:9000\n');
    const issues = await issuesOf({ argv: ['-c', file] });
    expect(issues.every((i) => i.rule === 'unknown-key')).toBe(true);
    const [a, b] = issues;
    expect(a).toMatchObject({
      key: 'raft.heartbeatIntervalMS',
      source: { kind: 'file', line: 2, column: 3 },
    });
    expect(a!.message).toContain('did you mean heartbeatIntervalMs?');
    expect(b).toMatchObject({ key: 'https', source: { kind: 'file', line: 3, column: 1 } });
    expect(b!.message).toContain('did you mean http?');
  });

  it('rejects unknown QUORATE_ variables and unknown flags', async () => {
    const issues = await issuesOf({
      env: { QUORATE_RAFT_HEARTBEAT_INTERVAL: '40', OTHER_VAR: 'x', QUORATE_CONFIG: '' },
      argv: ['--raft.heartbeat-interval', '40'],
    });
    expect(issues.map((i) => [i.key, i.rule])).toEqual([
      ['QUORATE_RAFT_HEARTBEAT_INTERVAL', 'unknown-key'],
      ['--raft.heartbeat-interval', 'unknown-key'],
    ]);
    expect(issues[0]!.message).toContain('QUORATE_RAFT_HEARTBEAT_INTERVAL_MS');
    expect(issues[1]!.message).toContain('--raft.heartbeat-interval-ms');
  });
});

describe('values', () => {
  it('rejects a value that does not fit in a log entry', async () => {
    const i = one(await issuesOf({ argv: ['--kv.max-value-bytes', String(2 << 20)] }), 'value-exceeds-entry');
    expect(i.message).toContain('raft.maxEntryBytes');
    expect(validate({ kv: { maxValueBytes: 2 << 20 }, raft: { maxEntryBytes: (2 << 20) + 4096 } }).ok).toBe(
      true,
    );
  });

  it('reports wrong types and ranges with the value given', async () => {
    const issues = await issuesOf({
      env: { QUORATE_RAFT_TICK_MS: 'ten', QUORATE_TRANSPORT_KIND: 'udp', QUORATE_RAFT_PRE_VOTE: 'maybe' },
      argv: ['--raft.max-inflight-msgs', '0'],
    });
    expect(issues.map((i) => [i.key, i.rule])).toEqual([
      ['transport.kind', 'type'],
      ['raft.tickMs', 'type'],
      ['raft.preVote', 'type'],
      ['raft.maxInflightMsgs', 'range'],
    ]);
    expect(issues[0]!.message).toBe('must be one of "tcp", "ws", got "udp"');
    expect(issues[1]!.message).toBe('expected a number, got "ten"');
  });
});

it('collects field and cross-field problems from every source in one run', async () => {
  using t = tempDir();
  const file = t.write('q.yaml', 'nodeId: n9\nraft:\n  electionTimeoutMs: 100\n  tikMs: 5\n');
  let err: unknown;
  try {
    await loadConfig({
      argv: ['-c', file, '--http.listen', 'nowhere'],
      env: { QUORATE_LEASES_MIN_TTL_MS: '-1' },
    });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const e = err as ConfigError;
  expect(e.code).toBe(ConfigErrorCode.Invalid);
  expect(e.issues.map((i) => i.rule).sort()).toEqual(
    ['election-timeout-vs-heartbeat', 'format', 'range', 'self-not-member', 'unknown-key'].sort(),
  );
  // Each line says where, which key, what and which rule.
  expect(e.message).toContain(`${file}:3:3: raft.electionTimeoutMs: 100 ms is shorter than 3 heartbeats`);
  expect(e.issues.map(formatIssue).every((l) => /\[[a-z-]+\]$/.test(l))).toBe(true);
});

it('lists the allowed keys when an unknown key resembles none', () => {
  const r = validate({ storage: { compression: 'zstd' } });
  expect(r.ok ? [] : r.issues.map((i) => [i.key, i.rule, i.message])).toEqual([
    [
      'storage.compression',
      'unknown-key',
      'unknown key "compression" (allowed here: dataDir, fsync, reserveBytes)',
    ],
  ]);
});

describe('the client protocol address', () => {
  it('comes from the fourth part of a member, the local layout serves it, client.listen derives from it', async () => {
    const { config, sources } = await loadConfig({
      argv: [
        '--members',
        'n1=127.0.0.1:7001=http://127.0.0.1:8081=quorate://127.0.0.1:9081',
        '--node-id',
        'n1',
      ],
      env: {},
    });
    expect(config.members[0]!.protocolAddress).toBe('quorate://127.0.0.1:9081');
    expect(config.client.listen).toBe('127.0.0.1:9081');
    expect(sources.get('client.listen')).toEqual({ kind: 'derived', from: 'members[0].protocolAddress' });
    const local = await loadConfig({ argv: ['--members', three, '--node-id', 'n2'], env: {} });
    expect(local.config.members.map((m) => m.protocolAddress)).toEqual([
      'quorate://127.0.0.1:9081',
      'quorate://127.0.0.1:9082',
      'quorate://127.0.0.1:9083',
    ]);
    expect(local.config.client.listen).toBe('127.0.0.1:9082');
    // Three parts: no protocol, and nothing listens for it.
    const none = await loadConfig({
      argv: ['--members', 'n1=127.0.0.1:7001=http://127.0.0.1:8081'],
      env: {},
    });
    expect(none.config.client.listen).toBeUndefined();
  });

  it('rejects a malformed one, a shared one, one on a port another listener takes, and plain quorate:// under TLS', async () => {
    const bad = await issuesOf({
      argv: ['--members', 'n1=127.0.0.1:7001=http://127.0.0.1:8081=http://127.0.0.1:9081'],
      env: {},
    });
    expect(
      bad.some((i) => i.key === 'members[0].protocolAddress' && /quorate:\/\/host:port/.test(i.message)),
    ).toBe(true);
    one(
      await issuesOf({
        argv: [
          '--members',
          'n1=127.0.0.1:7001=http://127.0.0.1:8081=quorate://127.0.0.1:9081,n2=127.0.0.1:7002=http://127.0.0.1:8082=quorate://127.0.0.1:9081',
        ],
        env: {},
      }),
      'duplicate-member-address',
    );
    one(
      await issuesOf({ argv: ['--members', three, '--client.listen', '127.0.0.1:8081'], env: {} }),
      'listen-conflict',
    );
    using t = tempDir();
    const tls = await issuesOf({
      argv: [
        '--members',
        'n1=127.0.0.1:7001=https://127.0.0.1:8081=quorate://127.0.0.1:9081',
        '--http.tls.enabled',
        'true',
        '--http.tls.cert-file',
        t.write('c.pem', 'x'),
        '--http.tls.key-file',
        t.write('k.pem', 'x'),
      ],
      env: {},
    });
    expect(tls.some((i) => /must start with quorates:\/\//.test(i.message))).toBe(true);
  });
});
