import { describe, expect, it } from 'vitest';
import { describeConfig, formatConfig, loadConfig, REDACTED } from '../src/index.js';
import { issuesOf, tempDir } from './helpers.js';

describe('print-config', () => {
  it('shows every value with its source and redacts secrets', async () => {
    using t = tempDir();
    const file = t.write('q.yaml', 'http:\n  token: s3cret-token\n');
    const loaded = await loadConfig({
      argv: ['-c', file, '--raft.tick-ms', '5'],
      env: { QUORATE_TRANSPORT_CLUSTER_SECRET: 'a-very-long-shared-secret' },
    });
    const text = formatConfig(loaded);
    expect(text).not.toContain('s3cret-token');
    expect(text).not.toContain('a-very-long-shared-secret');
    expect(text).toContain(`token: ${REDACTED} # ${file}:2:3`);
    expect(text).toContain('clusterSecret: <redacted> # env QUORATE_TRANSPORT_CLUSTER_SECRET');
    expect(text).toContain('tickMs: 5 # flag --raft.tick-ms');
    expect(text).toContain('heartbeatIntervalMs: 50 # default');
    expect(text).toContain('listen: 127.0.0.1:7001 # derived from members[0].peerAddress');

    const rows = describeConfig(loaded);
    expect(rows.find((r) => r.key === 'http.token')).toEqual({
      key: 'http.token',
      value: REDACTED,
      source: `${file}:2:3`,
    });
    expect(rows.find((r) => r.key === 'members[0].id')).toEqual({
      key: 'members[0].id',
      value: 'n1',
      source: 'default',
    });
    expect(JSON.parse(formatConfig(loaded, 'json'))).toEqual(rows);
  });

  it('never echoes a secret in an error, even a malformed one', async () => {
    using t = tempDir();
    const file = t.write('q.yaml', 'http:\n  token: 918273645\n');
    const issues = await issuesOf({ file, env: { QUORATE_TRANSPORT_CLUSTER_SECRET: 'short-secret' } });
    expect(issues.map((i) => [i.key, i.rule])).toEqual([
      ['transport.clusterSecret', 'range'],
      ['http.token', 'type'],
    ]);
    const text = issues.map((i) => i.message).join('\n');
    expect(text).not.toContain('918273645');
    expect(text).not.toContain('short-secret');
    expect(issues[1]!.message).toBe('expected a string, got a value (redacted)');
  });

  it('prints a valid config file that loads back to the same configuration', async () => {
    using t = tempDir();
    const loaded = await loadConfig({ env: { QUORATE_MEMBERS: 'local:3', QUORATE_NODE_ID: 'n2' } });
    const file = t.write('printed.yaml', formatConfig(loaded));
    expect((await loadConfig({ file })).config).toEqual(loaded.config);
  });
});
