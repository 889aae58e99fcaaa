import { describe, expect, it } from 'vitest';
import { InteractionEnv } from '../src/testing/index.js';

describe('leader election', () => {
  it('elects with PreVote first, then replicates a no-op of the new term', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.stabilize();
    expect(env.trace()).toMatchInlineSnapshot(`
      "campaign n1
      n1->n2 preVote t2 last=1/3
      n1->n3 preVote t2 last=1/3
      n2->n1 preVoteResponse t2
      n3->n1 preVoteResponse t2
      n1->n2 vote t2 last=1/3
      n1->n3 vote t2 last=1/3
      n2->n1 voteResponse t2
      n3->n1 voteResponse t2
      n1->n2 append t2 prev=1/3 ents=[2/4] commit=3
      n1->n3 append t2 prev=1/3 ents=[2/4] commit=3
      n2->n1 appendResponse t2 idx=4
      n3->n1 appendResponse t2 idx=4
      n1->n2 append t2 prev=2/4 ents=[] commit=4
      n1->n3 append t2 prev=2/4 ents=[] commit=4
      n2->n1 appendResponse t2 idx=4
      n3->n1 appendResponse t2 idx=4"
    `);
    expect(env.state()).toMatchInlineSnapshot(`
      "n1: leader term=2 lead=n1 commit=4 last=4
      n2: follower term=2 lead=n1 commit=4 last=4
      n3: follower term=2 lead=n1 commit=4 last=4"
    `);
  });

  it('a single-node cluster is a membership of one and elects itself at once', () => {
    const env = new InteractionEnv(1);
    env.tickAll(1);
    expect(env.leader()).toBe('n1');
    env.propose('n1', 'x');
    expect(env.node('n1').applied).toEqual(['x']);
  });

  it('an isolated node never leads: it stays a pre-candidate and its term does not move', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.stabilize();
    env.isolate('n3');
    for (let i = 0; i < 200; i++) {
      env.tickAll(1);
      env.stabilize();
    }
    expect(env.node('n3').core.currentRole).toBe('precandidate');
    expect(env.node('n3').core.currentTerm).toBe(2); // term 1 is the founding entries'
    expect(env.leader()).toBe('n1');
    // Rejoining does not disturb the leader: no term was raised while away.
    env.heal();
    env.tickAll(10);
    env.stabilize();
    expect(env.node('n3').core.currentRole).toBe('follower');
    expect(env.node('n1').core.currentRole).toBe('leader');
    expect(env.node('n1').core.currentTerm).toBe(2);
  });

  it('an isolated leader steps down after an election timeout (CheckQuorum) and the rest elect', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.stabilize();
    env.isolate('n1');
    for (let i = 0; i < 100; i++) {
      env.tickAll(1);
      env.stabilize();
    }
    expect(env.node('n1').core.currentRole).not.toBe('leader');
    const leaders = [...env.nodes.values()].filter((n) => n.core.currentRole === 'leader');
    expect(leaders.map((n) => n.id)).toHaveLength(1);
    expect(leaders[0]!.id).not.toBe('n1');
    expect(leaders[0]!.core.currentTerm).toBe(3);
  });

  it('leader stickiness: a follower that lost contact cannot depose a healthy leader', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.stabilize();
    env.trace();
    // n3 misses heartbeats and campaigns; n2 still hears from n1 and refuses.
    env.node('n3').core.campaign();
    env.process('n3');
    env.stabilize();
    expect(env.trace()).toMatchInlineSnapshot(`
      "n3->n1 preVote t3 last=2/4
      n3->n2 preVote t3 last=2/4"
    `);
    expect(env.leader()).toBe('n1');
    expect(env.node('n1').core.currentTerm).toBe(2);
  });

  it('followers that both lost the leader can elect one of them (etcd #9586)', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.stabilize();
    env.isolate('n1');
    // Both followers campaign at the same moment: each forgets the leader when it becomes
    // a pre-candidate, so neither refuses the other as "still in lease".
    env.node('n2').core.campaign();
    env.node('n3').core.campaign();
    env.process('n2');
    env.process('n3');
    env.stabilize();
    for (let i = 0; i < 60 && env.leader() !== 'n2' && env.leader() !== 'n3'; i++) {
      env.tickAll(1);
      env.stabilize();
    }
    expect(['n2', 'n3']).toContain(
      [...env.nodes.values()].find((n) => n.id !== 'n1' && n.core.currentRole === 'leader')?.id,
    );
  });

  it('a follower that refuses a pre-vote only for the log, its leader silent, campaigns at once', () => {
    const ticks = 10;
    const env = new InteractionEnv(3, { options: { electionTicks: ticks } });
    env.campaign('n1');
    env.stabilize();
    // n2 misses the leader's last entry, then the leader dies.
    env.partition('n1', 'n2');
    env.propose('n1', 'only-n3-has-it');
    env.stabilize();
    env.isolate('n1');
    // The followers' leases run out (a timeout is drawn strictly above electionTicks, so
    // neither has campaigned yet); n2, behind, times out first.
    env.tick('n3', ticks);
    env.tick('n2', ticks);
    expect(env.node('n3').core.currentRole).toBe('follower');
    env.campaign('n2');
    env.stabilize();
    // n3 refused n2 for its log and campaigned itself, with no further tick (n1, cut off,
    // still believes it leads term 2).
    expect(env.node('n3').core.currentRole).toBe('leader');
    expect(env.node('n3').core.currentTerm).toBe(3);
    expect(env.trace()).toContain('n3->n2 preVoteResponse t2 REJECT\nn3->n2 preVote t3 last=2/5');
    expect(env.node('n2').applied).toEqual(['only-n3-has-it']);
  });

  it('a pre-candidate asks again each heartbeat interval, so a voter whose lease ran out since grants', () => {
    const env = new InteractionEnv(3, { options: { electionTicks: 10, heartbeatTicks: 2 } });
    env.campaign('n1');
    env.stabilize();
    env.isolate('n1'); // the leader dies
    env.tick('n3', 5); // n3 heard from it 5 ticks ago: still within its lease
    env.campaign('n2');
    env.stabilize();
    expect(env.trace()).not.toContain('n3->n2 preVoteResponse');
    expect(env.node('n2').core.currentRole).toBe('precandidate');
    env.tick('n3', 5); // n3's lease is over; its own timer has not fired
    expect(env.node('n3').core.currentRole).toBe('follower');
    env.tick('n2', 2); // one heartbeat interval into n2's campaign: it asks again
    env.stabilize();
    expect(env.node('n2').core.currentRole).toBe('leader');
    expect(env.node('n2').core.currentTerm).toBe(3);
  });

  it('a follower within its leader lease that refuses a stale pre-vote does not campaign', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.stabilize();
    env.partition('n1', 'n2');
    env.propose('n1', 'x');
    env.stabilize();
    // n2 is cut off and campaigns; n3 still hears n1: it ignores n2 and stays a follower.
    env.campaign('n2');
    env.stabilize();
    expect(env.leader()).toBe('n1');
    expect(env.node('n3').core.currentRole).toBe('follower');
    expect(env.node('n1').core.currentTerm).toBe(2);
  });

  it('a node with a higher term but a stale log does not block the cluster forever', () => {
    const env = new InteractionEnv(3, { options: { preVote: false } });
    env.campaign('n1');
    env.stabilize();
    env.isolate('n3');
    // Without PreVote, n3 raises its term again and again while cut off.
    for (let i = 0; i < 100; i++) {
      env.tickAll(1);
      env.stabilize();
    }
    env.propose('n1', 'while-n3-away');
    env.stabilize();
    expect(env.node('n3').core.currentTerm).toBeGreaterThan(3);
    env.heal();
    for (
      let i = 0;
      i < 200 &&
      !(env.leader() && env.node(env.leader()!).core.currentTerm >= env.node('n3').core.currentTerm);
      i++
    ) {
      env.tickAll(1);
      env.stabilize();
    }
    const lead = env.leader();
    expect(lead).not.toBeNull();
    expect(lead).not.toBe('n3'); // its log is missing a committed entry
    env.propose(lead!, 'after');
    env.stabilize();
    expect(env.node('n3').applied).toEqual(['while-n3-away', 'after']);
  });

  it('a restarted node that campaigns with a fresh timer does not disturb the leader', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.stabilize();
    env.restart('n3');
    env.node('n3').core.campaign();
    env.process('n3');
    env.stabilize();
    expect(env.leader()).toBe('n1');
    expect(env.node('n1').core.currentTerm).toBe(2);
  });

  it('a candidate only leads once its own vote is durable', () => {
    const env = new InteractionEnv(3);
    const n1 = env.node('n1');
    env.hold('n1'); // this test plays n1's host by hand
    n1.core.campaign();
    let rd = n1.core.ready(); // pre-vote requests: nothing to persist
    env.queue.push(...rd.messages);
    n1.core.persisted(rd);
    env.deliver(); // n2 and n3 grant the pre-votes
    env.deliver(); // the grants reach n1, which becomes a candidate
    expect(n1.core.currentRole).toBe('candidate');
    rd = n1.core.ready(); // hard state (term 2, vote n1) and the vote requests
    expect(rd.hardState).toMatchObject({ term: 2, vote: 'n1' });
    expect(rd.mustSync).toBe(true);
    env.queue.push(...rd.messages);
    env.deliver(); // n2 and n3 grant their votes
    env.deliver(); // both grants reach n1 before its own write is done
    expect(n1.core.currentRole).toBe('candidate');
    n1.storage.persistSync(rd);
    n1.core.persisted(rd);
    expect(n1.core.currentRole).toBe('leader');
  });

  it('election backoff widens the timeout after failed campaigns', () => {
    const env = new InteractionEnv(3, { options: { electionTicks: 10 } });
    env.isolate('n1');
    const firstCampaigns: number[] = [];
    let ticks = 0;
    const n1 = env.node('n1');
    for (let i = 0; i < 2000; i++) {
      const before = n1.events.filter((e) => e.type === 'electionStarted').length;
      env.tick('n1');
      ticks++;
      const after = n1.events.filter((e) => e.type === 'electionStarted').length;
      if (after > before) {
        firstCampaigns.push(ticks);
        ticks = 0;
      }
    }
    const early = firstCampaigns.slice(0, 3);
    const late = firstCampaigns.slice(-20);
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // Every timeout is strictly above electionTicks, and late ones spread up to 4x wider.
    expect(Math.min(...firstCampaigns)).toBeGreaterThan(10);
    expect(Math.max(...late)).toBeLessThanOrEqual(10 + 1 + 40);
    expect(avg(late)).toBeGreaterThan(avg(early));
  });
});
