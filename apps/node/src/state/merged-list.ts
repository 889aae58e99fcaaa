/**
 * A page of keys over several groups' states, in key order: a k-way merge of per-group
 * pages read on demand, so that a listing costs about `limit` plus a small page per group,
 * however many groups there are (never every group's full `limit`, sorted at once).
 */
import type { QuorateMachine } from './machine.js';

type Item = ReturnType<QuorateMachine['list']>['items'][number];

interface Cursor {
  readonly machine: QuorateMachine;
  items: Item[];
  at: number;
  more: boolean;
}

export function mergedList(
  machines: readonly QuorateMachine[],
  prefix: string,
  limit: number,
  after: string | undefined,
): { items: Item[]; more: boolean } {
  const page = Math.min(limit, Math.max(16, Math.ceil((2 * limit) / Math.max(1, machines.length))));
  const heap: Cursor[] = [];
  const load = (c: Cursor, from: string | undefined): boolean => {
    const r = c.machine.list(prefix, page, from);
    c.items = r.items;
    c.at = 0;
    c.more = r.more;
    return r.items.length > 0;
  };
  for (const machine of machines) {
    const c: Cursor = { machine, items: [], at: 0, more: false };
    if (load(c, after)) push(heap, c);
  }
  const out: Item[] = [];
  while (out.length < limit && heap.length > 0) {
    const c = heap[0]!;
    const item = c.items[c.at++]!;
    out.push(item);
    if (c.at < c.items.length || (c.more && load(c, item.key))) siftDown(heap, 0);
    else {
      const last = heap.pop()!;
      if (heap.length > 0 && last !== c) {
        heap[0] = last;
        siftDown(heap, 0);
      }
    }
  }
  return { items: out, more: heap.length > 0 };
}

const keyOf = (c: Cursor) => c.items[c.at]!.key;
const less = (a: Cursor, b: Cursor) => keyOf(a) < keyOf(b);

function push(heap: Cursor[], c: Cursor): void {
  heap.push(c);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!less(heap[i]!, heap[parent]!)) break;
    [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
    i = parent;
  }
}

function siftDown(heap: Cursor[], i: number): void {
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let m = i;
    if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
    if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
    if (m === i) return;
    [heap[i], heap[m]] = [heap[m]!, heap[i]!];
    i = m;
  }
}
