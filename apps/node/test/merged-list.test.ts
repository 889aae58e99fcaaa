/** A listing merged over groups: in key order, pages that miss and repeat nothing, bounded work. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCommand } from '../src/state/commands.js';
import { QuorateMachine } from '../src/state/machine.js';
import { mergedList } from '../src/state/merged-list.js';

const enc = new TextEncoder();

function machines(keysPerGroup: string[][]): QuorateMachine[] {
  return keysPerGroup.map((keys) => {
    const m = new QuorateMachine();
    for (const [i, key] of keys.entries())
      m.apply({
        index: i + 1,
        term: 1,
        type: 0,
        data: encodeCommand({ op: 'put', key, value: enc.encode(key) }),
      });
    return m;
  });
}

/** Every page of `limit`, following `after`, until `more` is false. */
function pages(ms: QuorateMachine[], prefix: string, limit: number): string[] {
  const out: string[] = [];
  let after: string | undefined;
  for (let n = 0; n < 10_000; n++) {
    const p = mergedList(ms, prefix, limit, after);
    out.push(...p.items.map((i) => i.key));
    if (!p.more) return out;
    expect(p.items).toHaveLength(limit);
    after = p.items.at(-1)!.key;
  }
  throw new Error('no end');
}

describe('mergedList', () => {
  it('lists every key of every group under the prefix once, in order, whatever the page size', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.uniqueArray(
            fc.string({ minLength: 1, maxLength: 4, unit: fc.constantFrom('a', 'b', 'c', 'é') }),
            { maxLength: 40 },
          ),
          {
            minLength: 1,
            maxLength: 9,
          },
        ),
        fc.integer({ min: 1, max: 25 }),
        fc.constantFrom('', 'a', 'b', 'cé'),
        (groups, limit, prefix) => {
          // A key lives in one group.
          const seen = new Set<string>();
          const split = groups.map((g) => g.filter((k) => !seen.has(k) && seen.add(k)));
          const want = [...seen]
            .filter((k) => k.startsWith(prefix))
            .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          expect(pages(machines(split), prefix, limit)).toEqual(want);
        },
      ),
      { seed: 20261207, numRuns: 300 },
    );
  });

  it('reads a small page per group, not the whole limit from each', () => {
    const many = machines(
      Array.from({ length: 64 }, (_, g) => Array.from({ length: 200 }, (_, i) => `k${g}-${i}`)),
    );
    const reads: number[] = [];
    for (const m of many) {
      const list = m.list.bind(m);
      m.list = (prefix, limit, after) => {
        reads.push(limit);
        return list(prefix, limit, after);
      };
    }
    const p = mergedList(many, 'k', 1000, undefined);
    expect(p.items).toHaveLength(1000);
    expect(p.more).toBe(true);
    // 64 groups asked for 2 × 1000 / 64 = 32 keys each, and more only where the merge used
    // them up: at most the limit plus one page per group and one more page.
    expect(Math.max(...reads)).toBe(32);
    expect(reads.reduce((a, b) => a + b)).toBeLessThanOrEqual(1000 + 64 * 32 + 32);
  });
});
