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
