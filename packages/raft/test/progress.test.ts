/** One follower's replication progress as the leader tracks it, on its own. */
import { describe, expect, it } from 'vitest';
import { Progress } from '../src/core/progress.js';

const fresh = (next = 11) => new Progress(next, 4, 0, false);

describe('Progress', () => {
  it('an acknowledgement moves match (and next, if behind); a stale one changes nothing', () => {
    const p = fresh();
    expect(p.maybeUpdate(15)).toBe(true);
    expect([p.match, p.next]).toEqual([15, 16]);
    expect(p.maybeUpdate(12)).toBe(false);
    expect([p.match, p.next]).toEqual([15, 16]);
  });

  it('probe: one append at a time, paused until it is answered', () => {
    const p = fresh();
    expect(p.state).toBe('probe');
    expect(p.isPaused()).toBe(false);
    p.sentEntries(3, 13, 30);
    expect(p.isPaused()).toBe(true);
    expect(p.next).toBe(11); // probing does not run ahead
    p.maybeUpdate(13);
    expect(p.isPaused()).toBe(false);
  });

  it('probe: a rejection only counts for the append just sent, and backs off to the hint', () => {
    const p = fresh(11);
    p.match = 4;
    p.sentEntries(1, 11, 10);
    expect(p.maybeDecrTo(7, 5)).toBe(false); // answers an older append (prevIndex 7)
    expect(p.maybeDecrTo(10, 5)).toBe(true); // prevIndex 10 = next - 1
    expect([p.next, p.probeSent]).toEqual([6, false]);
    // Never below match + 1, whatever the hint says.
    p.sentEntries(1, 6, 10);
    expect(p.maybeDecrTo(5, 0)).toBe(true);
    expect(p.next).toBe(5);
  });

  it('replicate: pipelines within the window, and a rejection above match rewinds to match + 1', () => {
    const p = fresh();
    p.maybeUpdate(10);
    p.becomeReplicate();
    expect(p.next).toBe(11);
    for (let i = 0; i < 4; i++) p.sentEntries(2, 12 + 2 * i, 100);
    expect([p.next, p.inflights.count, p.isPaused()]).toEqual([19, 4, true]);
    expect(p.maybeDecrTo(9, 0)).toBe(false); // at or below match: stale
    expect(p.maybeDecrTo(14, 3)).toBe(true);
    expect(p.next).toBe(11);
    // An empty append (a heartbeat's) takes no window slot.
    const q = fresh();
    q.becomeReplicate();
    q.sentEntries(0, 10, 0);
    expect(q.inflights.count).toBe(0);
  });

  it('snapshot: paused while it is sent; back to probe from past the snapshot', () => {
    const p = fresh();
    p.match = 3;
    p.becomeSnapshot(50);
    expect([p.state, p.isPaused(), p.pendingSnapshot]).toEqual(['snapshot', true, 50]);
    p.becomeProbe();
    expect([p.state, p.next, p.pendingSnapshot]).toEqual(['probe', 51, 0]);
    // From replicate, probing restarts at match + 1 with an empty window.
    const q = fresh();
    q.maybeUpdate(20);
    q.becomeReplicate();
    q.sentEntries(5, 25, 50);
    q.becomeProbe();
    expect([q.next, q.inflights.count]).toEqual([21, 0]);
  });
});
