/**
 * The CLI helper in a real child process: the example program, run with a bad setting,
 * must exit 2 with the problems on stderr and no stack trace.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const example = join(import.meta.dirname, '..', 'examples', 'start.ts');
// Relative to the child's working directory, as the README shows it.
const yaml = 'examples/quorate.yaml';

function run(args: string[], env: Record<string, string> = {}) {
  // Only the variables the child needs: an inherited QUORATE_* would change the outcome.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUORATE_')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=source', example, ...args], {
    encoding: 'utf8',
    cwd: join(import.meta.dirname, '..'),
    env: { ...base, ...env },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('loadConfigOrExit in a real process', () => {
  it('starts with no file at all', () => {
    const r = run([]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      'node n1 of n1: raft tcp on 127.0.0.1:7001, HTTP on 127.0.0.1:8081, data in data/n1',
    );
  });

  it('runs the README example as shown', () => {
    const r = run(['-c', yaml, '--node-id', 'n2'], { QUORATE_RAFT_HEARTBEAT_INTERVAL_MS: '40' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        'node n2 of n1,n2,n3: raft tcp on 127.0.0.1:7002, HTTP on 127.0.0.1:8082, data in data/n2',
        'heartbeat 40 ms (env QUORATE_RAFT_HEARTBEAT_INTERVAL_MS)',
        'leader hints point to http://127.0.0.1:8082',
        '',
      ].join('\n'),
    );
  });

  it('exits 2 with key, source and rule on stderr, and no stack trace', () => {
    const r = run(
      ['-c', yaml, '--node-id', 'n4', '--raft.election-timeout-ms', '100', '--http.lisen', ':1'],
      {
        QUORATE_LOG_LEVEL: 'loud',
      },
    );
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('quorate: invalid configuration (4 problems):');
    expect(r.stderr).toContain('flag --http.lisen: unknown flag; did you mean --http.listen? [unknown-key]');
    expect(r.stderr).toContain('env QUORATE_LOG_LEVEL: log.level: must be one of');
    expect(r.stderr).toContain('flag --node-id: nodeId: "n4" is not one of the members');
    expect(r.stderr).toMatch(
      /flag --raft\.election-timeout-ms: raft\.electionTimeoutMs: .*examples\/quorate\.yaml:8:3.*\[election-timeout-vs-heartbeat\]/,
    );
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toContain('ConfigError');
  });

  it('exits 2 when the file cannot be read', () => {
    using t = tempDir();
    const r = run(['-c', join(t.dir, 'nope.yaml')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('flag --config: config file: cannot read');
    expect(r.stderr).toContain('ENOENT [file-unreadable]');
  });

  it('--print-config prints the effective config with sources, secrets redacted, and exits 0', () => {
    const r = run(['-c', yaml, '--node-id', 'n3', '--print-config']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('nodeId: n3 # flag --node-id');
    expect(r.stdout).toContain('token: <redacted> # examples/quorate.yaml:11:3');
    expect(r.stdout).not.toContain('change-me');
    expect(r.stdout).not.toContain('node n3 of');
  });
});
