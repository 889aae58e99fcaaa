/** When the nemesis counts a heal as done: one leader that every member names, in every group. */
import { describe, expect, it } from 'vitest';
import { agreedLeaders } from '../src/nemesis/nemesis.js';

const single = (nodeId: string, leaderId: string | null) => ({
  nodeId,
  leaderId,
  isLeader: nodeId === leaderId,
});
const sharded = (nodeId: string, leaders: (string | null)[]) => ({
  nodeId,
  leaderId: leaders[0],
  isLeader: leaders[0] === nodeId,
  groups: leaders.map((l, group) => ({ group, leaderId: l, isLeader: l === nodeId })),
});

describe('agreedLeaders', () => {
  it('one group: every member names the same leader, which says it leads', () => {
    expect(agreedLeaders([single('n1', 'n2'), single('n2', 'n2'), single('n3', 'n2')])).toBe(true);
    expect(agreedLeaders([single('n1', 'n2'), single('n2', 'n2'), single('n3', 'n1')])).toBe(false);
    expect(agreedLeaders([single('n1', null), single('n2', null), single('n3', null)])).toBe(false);
    expect(agreedLeaders([single('n1', 'n2'), null, single('n3', 'n2')])).toBe(false);
  });

  it('sharded: every group agreed, not only group 0', () => {
    const ok = ['n1', 'n2', 'n3'].map((id) => sharded(id, ['n1', 'n2', 'n3', 'n1']));
    expect(agreedLeaders(ok)).toBe(true);
    const split = [sharded('n1', ['n1', 'n2']), sharded('n2', ['n1', 'n2']), sharded('n3', ['n1', 'n3'])];
    expect(agreedLeaders(split)).toBe(false);
    const leaderless = ['n1', 'n2', 'n3'].map((id) => sharded(id, ['n1', null]));
    expect(agreedLeaders(leaderless)).toBe(false);
    // Named by all, but the named member does not (yet) say it leads that group.
    const stale = ['n1', 'n2', 'n3'].map((id) => sharded(id, ['n1', 'n2']));
    stale[1]!.groups[1]!.isLeader = false;
    expect(agreedLeaders(stale)).toBe(false);
  });
});
