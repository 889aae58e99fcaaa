/** `quorate-check` as a real process, on histories written to files. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { history, jsonl } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'quorate-check-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(import.meta.dirname, '..', 'src', 'bin.ts');

function check(name: string, text: string, ...args: string[]) {
  const file = join(dir, `${name}.jsonl`);
  writeFileSync(file, text);
  const r = spawnSync(process.execPath, ['--import', 'tsx', bin, file, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const good = history(
  { p: 0, f: 'put', v: 'a', at: [0, 10] },
  { p: 1, f: 'get', v: 'a', at: [11, 20] },
  { p: 0, f: 'cas', v: ['a', 'b'], at: [21, 30] },
  { p: 1, f: 'get', v: 'b', at: [31, 40] },
);

describe('quorate-check', () => {
  it('a linearizable history exits 0', () => {
    const r = check('good', jsonl(good));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/linearizable/);
  });

  it('a stale read exits 1 and names the key and the operations', () => {
    const stale = history(
      { p: 0, f: 'put', v: 'a', at: [0, 10] },
      { p: 0, f: 'put', v: 'b', at: [11, 20] },
      { p: 1, f: 'get', v: 'a', at: [21, 30] },
    );
    const r = check('stale', jsonl(stale));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/NOT linearizable/);
    expect(r.out).toMatch(/key "k"/);
  });

  it('a write applied twice (observed again after a later write) exits 1', () => {
    const dup = history(
      { p: 0, f: 'put', v: 'a', at: [0, 10] },
      { p: 1, f: 'put', v: 'b', at: [11, 20] },
      { p: 2, f: 'get', v: 'b', at: [21, 30] },
      { p: 2, f: 'get', v: 'a', at: [31, 40] },
    );
    expect(check('dup', jsonl(dup)).code).toBe(1);
  });

  it('a lost acknowledged write in the final state exits 1', () => {
    const finals = join(dir, 'final.json');
    writeFileSync(finals, JSON.stringify({ n1: { k: 'b' }, n2: { k: 'a' } }));
    const r = check('lost', jsonl(good), '--final', finals);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/lost writes: 1/);
    writeFileSync(finals, JSON.stringify({ n1: { k: 'b' }, n2: { k: 'b' } }));
    expect(check('kept', jsonl(good), '--final', finals).code).toBe(0);
  });

  it('an unreadable history exits 2 and says which line', () => {
    const r = check('broken', `${jsonl(good)}{"process": 1, "type": "ok"\n`);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/line 9/);
  });

  it('--json prints a machine-readable result', () => {
    const r = check('json', jsonl(good), '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ linearizable: true, keys: 1 });
  });
});
