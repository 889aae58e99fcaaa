import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  ConfigErrorCode,
  configFields,
  defaults,
  fromArgv,
  fromEnv,
  fromYaml,
  loadConfig,
  localMembers,
} from '../src/index.js';
import { issuesOf, tempDir } from './helpers.js';

describe('defaults', () => {
  it('describe a single loopback node that needs no file', async () => {
    const c = defaults();
    expect(c.nodeId).toBe('n1');
    expect(c.members).toEqual(localMembers(1));
    expect(c.transport.listen).toBe('127.0.0.1:7001');
    expect(c.http.listen).toBe('127.0.0.1:8081');
    expect(c.storage.dataDir).toBe('data/n1');
    expect(c.raft).toMatchObject({
      tickMs: 10,
      heartbeatIntervalMs: 50,
      electionTimeoutMs: 150,
      preVote: true,
      checkQuorum: true,
    });
    expect((await loadConfig()).config).toEqual(c);
  });

  it('give each node of the local three-member layout its own ports', async () => {
    const { config, sources } = await loadConfig({
      env: { QUORATE_MEMBERS: 'local:3', QUORATE_NODE_ID: 'n3' },
    });
    expect(config.members.map((m) => [m.id, m.peerAddress, m.clientAddress])).toEqual([
      ['n1', '127.0.0.1:7001', 'http://127.0.0.1:8081'],
      ['n2', '127.0.0.1:7002', 'http://127.0.0.1:8082'],
      ['n3', '127.0.0.1:7003', 'http://127.0.0.1:8083'],
    ]);
    expect([config.transport.listen, config.http.listen, config.storage.dataDir]).toEqual([
      '127.0.0.1:7003',
      '127.0.0.1:8083',
      'data/n3',
    ]);
    expect(sources.get('http.listen')).toEqual({ kind: 'derived', from: 'members[2].clientAddress' });
  });
});

describe('precedence: flags > environment > file > defaults', () => {
  it('takes each value from the strongest source that sets it, and says which', async () => {
    using t = tempDir();
    const file = t.write(
      'q.yaml',
      'raft:\n  tickMs: 5\n  heartbeatIntervalMs: 30\n  electionTimeoutMs: 300\nlog:\n  level: debug\n',
    );
    const { config, sources } = await loadConfig({
      argv: ['--raft.heartbeat-interval-ms=20', '--log.format', 'pretty'],
      env: { QUORATE_CONFIG: file, QUORATE_RAFT_HEARTBEAT_INTERVAL_MS: '25', QUORATE_RAFT_TICK_MS: '4' },
    });
    expect(config.raft.heartbeatIntervalMs).toBe(20);
    expect(sources.get('raft.heartbeatIntervalMs')).toEqual({
      kind: 'flag',
      name: '--raft.heartbeat-interval-ms',
    });
    expect(config.raft.tickMs).toBe(4);
    expect(sources.get('raft.tickMs')).toEqual({ kind: 'env', name: 'QUORATE_RAFT_TICK_MS' });
    expect(config.raft.electionTimeoutMs).toBe(300);
    expect(sources.get('raft.electionTimeoutMs')).toEqual({ kind: 'file', file, line: 4, column: 3 });
    expect([config.log.level, config.log.format]).toEqual(['debug', 'pretty']);
    expect(config.raft.maxInflightMsgs).toBe(256);
    expect(sources.has('raft.maxInflightMsgs')).toBe(false);
  });

  it('replaces the members list whole, sources included', async () => {
    using t = tempDir();
    const file = t.write(
      'q.yaml',
      'members:\n  - id: a\n    peerAddress: 10.0.0.1:7001\n    clientAddress: http://10.0.0.1:8081\nnodeId: a\n',
    );
    const { config, sources } = await loadConfig({
      argv: ['-c', file, '--members', 'local:2', '--node-id', 'n2'],
    });
    expect(config.members).toEqual(localMembers(2));
    expect([...sources.keys()].filter((k) => k.startsWith('members'))).toEqual(['members']);
  });

  it('--config beats QUORATE_CONFIG', async () => {
    using t = tempDir();
    const a = t.write('a.yaml', 'clusterId: from-flag\n');
    const b = t.write('b.yaml', 'clusterId: from-env\n');
    const { config, file } = await loadConfig({ argv: ['--config', a], env: { QUORATE_CONFIG: b } });
    expect([config.clusterId, file]).toEqual(['from-flag', a]);
  });
});

describe('YAML', () => {
  it('records the line and column of every key and list item', () => {
    const l = fromYaml('nodeId: n2\nmembers:\n  - id: n2\n    peerAddress: h:1\n', 'f.yaml');
    expect(l.sources.get('nodeId')).toEqual({ kind: 'file', file: 'f.yaml', line: 1, column: 1 });
    expect(l.sources.get('members[0]')).toMatchObject({ line: 3, column: 5 });
    expect(l.sources.get('members[0].peerAddress')).toMatchObject({ line: 4, column: 5 });
  });

  it('reports syntax errors and duplicate keys with their line, and stops there', async () => {
    using t = tempDir();
    const bad = t.write('bad.yaml', 'raft:\n  tickMs: 5\n  tickMs: 6\n');
    const issues = await issuesOf({ argv: ['-c', bad] });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ rule: 'yaml-syntax', source: { kind: 'file', file: bad, line: 3 } });
    const broken = t.write('broken.yaml', 'raft: [1, 2\n');
    expect((await issuesOf({ argv: ['-c', broken] }))[0]!.rule).toBe('yaml-syntax');
  });

  it('treats an empty file and keys without values as unset', async () => {
    using t = tempDir();
    expect((await loadConfig({ file: t.write('empty.yaml', '') })).config).toEqual(defaults());
    expect((await loadConfig({ file: t.write('nulls.yaml', 'raft:\nhttp:\n  token:\n') })).config).toEqual(
      defaults(),
    );
  });

  it('rejects a file that is not a map', async () => {
    using t = tempDir();
    const issues = await issuesOf({ file: t.write('list.yaml', '- a\n- b\n') });
    expect(issues[0]!.message).toContain('map of settings');
  });

  it('fails with CONFIG_FILE_UNREADABLE for a missing file', async () => {
    await expect(loadConfig({ argv: ['-c', '/nonexistent/q.yaml'] })).rejects.toMatchObject({
      code: ConfigErrorCode.FileUnreadable,
    });
    await expect(loadConfig({ argv: ['-c', '/nonexistent/q.yaml'] })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('environment and flags', () => {
  it('derive every name from the schema path, all distinct', () => {
    const fields = configFields();
    const hb = fields.find((f) => f.key === 'raft.heartbeatIntervalMs')!;
    expect([hb.env, hb.flag]).toEqual(['QUORATE_RAFT_HEARTBEAT_INTERVAL_MS', '--raft.heartbeat-interval-ms']);
    expect(new Set(fields.map((f) => f.env)).size).toBe(fields.length);
    expect(new Set(fields.map((f) => f.flag)).size).toBe(fields.length);
    expect(configFields('MYAPP_').find((f) => f.key === 'nodeId')!.env).toBe('MYAPP_NODE_ID');
  });

  it('convert strings to the field type and ignore empty variables', () => {
    const l = fromEnv({
      QUORATE_RAFT_TICK_MS: '1_0',
      QUORATE_RAFT_PRE_VOTE: 'off',
      QUORATE_HTTP_TOKEN: '',
      PATH: '/bin',
    });
    expect(l.values).toEqual({ raft: { tickMs: 10, preVote: false } });
    expect(l.issues).toEqual([]);
  });

  it('read every flag form', () => {
    const l = fromArgv([
      '--raft.tick-ms',
      '5',
      '--raft.heartbeatIntervalMs=25',
      '--no-raft.pre-vote',
      '--raft.check-quorum',
      'false',
      '--storage.fsync',
      '--print-config',
    ]);
    expect(l.issues).toEqual([]);
    expect(l.values).toEqual({
      raft: { tickMs: 5, heartbeatIntervalMs: 25, preVote: false, checkQuorum: false },
      storage: { fsync: true },
    });
    expect(l.printConfig).toBe(true);
  });

  it('report a flag without its value, a stray argument, and a negated non-boolean', () => {
    const l = fromArgv(['--node-id', '--no-node-id', 'stray', '--raft.tick-ms']);
    expect(l.issues.map((i) => [i.key, i.rule])).toEqual([
      ['nodeId', 'usage'],
      ['nodeId', 'usage'],
      ['stray', 'usage'],
      ['raft.tickMs', 'usage'],
    ]);
  });

  it('accept members as local:N, id=peer=client lists and YAML flow lists', async () => {
    const flow =
      '[{id: a, peerAddress: "h1:1", clientAddress: "http://h1:2"}, {id: b, peerAddress: "h2:1", clientAddress: "https://h2"}]';
    const { config } = await loadConfig({ env: { QUORATE_MEMBERS: flow, QUORATE_NODE_ID: 'b' } });
    expect(config.members.map((m) => m.id)).toEqual(['a', 'b']);
    expect(config.http.listen).toBe('h2:443');
    const list = await loadConfig({
      argv: ['--members', 'x=h:1=http://h:2, y=h:3=http://h:4', '--node-id', 'y'],
    });
    expect(list.config.members[1]).toEqual({ id: 'y', peerAddress: 'h:3', clientAddress: 'http://h:4' });
    const issues = await issuesOf({ argv: ['--members', 'n1=h:1'] });
    expect(issues[0]).toMatchObject({
      key: 'members',
      rule: 'type',
      source: { kind: 'flag', name: '--members' },
    });
  });
});
