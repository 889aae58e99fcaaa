import { describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../src/index.js';
import { findLostWrites as lostIn, parseHistory } from '../src/index.js';

const findLostWrites = async (h: HistoryEvent[], f: Parameters<typeof lostIn>[1]) =>
  lostIn((await parseHistory(h)).ops, f);

import { history } from './helpers.js';

const finals = (...replicas: Record<string, string | null>[]) =>
  new Map(replicas.map((r, i) => [`r${i}`, new Map(Object.entries(r))]));

describe('lost writes against the final state', async () => {
  it('the last acknowledged write present everywhere: nothing lost', async () => {
    const h = history({ p: 0, f: 'put', v: 'a', at: [0, 1] }, { p: 1, f: 'put', v: 'b', at: [2, 3] });
    expect(await findLostWrites(h, finals({ k: 'b' }, { k: 'b' }))).toEqual([]);
  });

  it('a replica still holding an older value than an acknowledged later write loses it', async () => {
    const h = history({ p: 0, f: 'put', v: 'a', at: [0, 1] }, { p: 1, f: 'put', v: 'b', at: [2, 3] });
    const lost = await findLostWrites(h, finals({ k: 'b' }, { k: 'a' }));
    expect(lost).toEqual([{ key: 'k', replica: 'r1', wrote: 'b', process: 1, found: 'a' }]);
  });

  it('concurrent writes may end in either order', async () => {
    const h = history({ p: 0, f: 'put', v: 'a', at: [0, 5] }, { p: 1, f: 'put', v: 'b', at: [1, 4] });
    expect(await findLostWrites(h, finals({ k: 'a' }))).toEqual([]);
    expect(await findLostWrites(h, finals({ k: 'b' }))).toEqual([]);
  });

  it('an unknown-outcome write may land late and explain the final value', async () => {
    const h = history(
      { p: 0, f: 'put', v: 'a', at: [0, 1], type: 'info' },
      { p: 1, f: 'put', v: 'b', at: [2, 3] },
    );
    expect(await findLostWrites(h, finals({ k: 'a' }))).toEqual([]);
  });

  it('a failed write never explains anything, and an absent key loses an acknowledged put', async () => {
    const h = history(
      { p: 0, f: 'put', v: 'a', at: [0, 1] },
      { p: 1, f: 'put', v: 'z', at: [2, 3], type: 'fail' },
    );
    expect(await findLostWrites(h, finals({ k: 'z' }))).toHaveLength(1);
    expect(await findLostWrites(h, finals({}))).toEqual([
      { key: 'k', replica: 'r0', wrote: 'a', process: 0, found: null },
    ]);
  });

  it('a value nobody wrote loses every acknowledged write of the key; cas and delete count as writes', async () => {
    const h = history(
      { p: 0, f: 'put', v: 'a', at: [0, 1] },
      { p: 1, f: 'cas', v: ['a', 'c'], at: [2, 3] },
      { p: 2, f: 'delete', v: true, at: [4, 5], key: 'x' },
    );
    expect(await findLostWrites(h, finals({ k: 'corrupt', x: null }))).toHaveLength(2);
    expect(await findLostWrites(h, finals({ k: 'c' }))).toEqual([]);
  });
});
