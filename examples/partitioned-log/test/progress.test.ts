import { describe, expect, it } from 'vitest';
import { ReplicaProgress } from '../src/progress.js';

const replicas = ['b1', 'b2', 'b3'];

describe('ReplicaProgress', () => {
  it('acknowledges what every eligible replica holds, and only with two or more of them', () => {
    const p = new ReplicaProgress('b1', replicas, replicas, 0, 0);
    expect(p.advance(5)).toBe(0);
    p.recordFetch('b2', 5, 5, 10);
    expect(p.advance(5)).toBe(0); // b3 holds nothing yet
    p.recordFetch('b3', 3, 5, 10);
    expect(p.advance(5)).toBe(3);
    const alone = new ReplicaProgress('b1', replicas, ['b1'], 0, 0);
    alone.recordFetch('b2', 5, 5, 10);
    expect(alone.advance(5)).toBe(0);
  });

  it('never moves the high watermark back (a restarted follower holds nothing)', () => {
    const p = new ReplicaProgress('b1', replicas, ['b1', 'b2'], 0, 0);
    p.recordFetch('b2', 4, 4, 1);
    expect(p.advance(4)).toBe(4);
    p.recordFetch('b2', 0, 6, 2);
    expect(p.advance(6)).toBe(4);
  });

  it('drops a follower not caught up for maxLag, and waits for both sets until quorate confirms', () => {
    const p = new ReplicaProgress('b1', replicas, replicas, 0, 0);
    p.recordFetch('b2', 0, 0, 0);
    p.recordAnswer('b2', 0);
    p.recordFetch('b2', 0, 0, 900);
    expect(p.nextChange(0, 1000, 1000)).toBeNull();
    const c = p.nextChange(0, 1001, 1000);
    expect(c?.eligible).toEqual(['b1', 'b2']);
    p.propose(c!.eligible);
    expect(p.ackSet()).toEqual(['b1', 'b2', 'b3']);
    expect(p.nextChange(0, 5000, 1000)).toBeNull(); // one change at a time
    p.confirm(['b1', 'b2']);
    expect(p.ackSet()).toEqual(['b1', 'b2']);
  });

  it('does not add back a replica that has not fetched (it may be down), however empty the log', () => {
    const p = new ReplicaProgress('b1', replicas, ['b1', 'b2'], 0, 0);
    expect(p.nextChange(0, 10, 1000)).toBeNull();
    p.recordFetch('b3', 0, 0, 20);
    expect(p.nextChange(0, 20, 1000)?.eligible).toEqual(['b1', 'b2', 'b3']);
  });

  it('adds back a replica that has caught up, counting it from the proposal on', () => {
    const p = new ReplicaProgress('b1', replicas, ['b1', 'b2'], 0, 0);
    p.recordFetch('b2', 10, 10, 100);
    p.recordFetch('b3', 7, 10, 100);
    expect(p.nextChange(10, 100, 1000)).toBeNull();
    p.recordFetch('b3', 10, 10, 200);
    const c = p.nextChange(10, 200, 1000);
    expect(c?.eligible).toEqual(['b1', 'b2', 'b3']);
    p.propose(c!.eligible);
    expect(p.ackSet()).toEqual(['b1', 'b2', 'b3']);
    // An entry appended now waits for b3 as well, though quorate has not answered yet.
    p.recordFetch('b2', 11, 11, 300);
    expect(p.advance(11)).toBe(10);
  });
});
