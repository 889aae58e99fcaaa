/** The group count a data directory was created with, recorded durably and checked at start. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkGroupCount, NodeStartError } from '../src/plugs.js';

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'quorate-groups-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const refusal = (f: () => void): NodeStartError => {
  try {
    f();
  } catch (err) {
    return err as NodeStartError;
  }
  throw new Error('not refused');
};

describe('checkGroupCount', () => {
  it('records the count of a new sharded directory, then accepts only that count', () => {
    const d = fresh();
    checkGroupCount(d, 8);
    expect(JSON.parse(readFileSync(join(d, 'quorate-groups.json'), 'utf8'))).toEqual({ groups: 8 });
    checkGroupCount(d, 8);
    const e = refusal(() => checkGroupCount(d, 4));
    expect(e).toBeInstanceOf(NodeStartError);
    expect(e.code).toBe('GROUP_COUNT_MISMATCH');
    expect(e.message).toMatch(/created with groups = 8.*says 4/);
  });

  it('a single-group directory (a log, no record) is refused for a sharded start; a new one-group directory records nothing', () => {
    const single = fresh();
    writeFileSync(join(single, 'data.mdb'), '');
    checkGroupCount(single, 1);
    expect(refusal(() => checkGroupCount(single, 16)).code).toBe('GROUP_COUNT_MISMATCH');
    const d = fresh();
    checkGroupCount(d, 1);
    expect(() => readFileSync(join(d, 'quorate-groups.json'))).toThrow();
  });

  it('an unreadable record is refused with what to do, never guessed', () => {
    const d = fresh();
    writeFileSync(join(d, 'quorate-groups.json'), '{"gro');
    const e = refusal(() => checkGroupCount(d, 8));
    expect(e.code).toBe('GROUP_COUNT_MISMATCH');
    expect(e.message).toMatch(/cannot be read.*Restore it/);
  });
});
