import { describe, expect, it } from 'vitest';
import { RaftErrorCode } from '../src/errors.js';
import { InteractionEnv } from '../src/testing/index.js';

function elected(n = 3) {
  const env = new InteractionEnv(n);
  env.campaign('n1');
  env.stabilize();
  env.trace();
  return env;
}

function settle(env: InteractionEnv, rounds = 50) {
  for (let i = 0; i < rounds; i++) {
    env.tickAll(1);
    env.stabilize();
  }
}

describe('membership changes, one member at a time', () => {
  it('a new member joins as a learner, catches up without counting, then is promoted', () => {
    const env = elected();
    env.propose('n1', 'a');
    env.stabilize();
    env.addNode('n4');
    env.proposeConf('n1', { kind: 'addLearner', node: 'n4' });
    env.stabilize();
    expect(env.node('n4').applied).toEqual(['a']);
    expect(env.node('n4').core.status().learners).toEqual(['n4']);
    expect(env.node('n1').core.status().learners).toEqual(['n4']);
    // A learner never campaigns.
    for (let i = 0; i < 100; i++) env.tick('n4');
    expect(env.node('n4').core.currentRole).toBe('follower');
    env.proposeConf('n1', { kind: 'addVoter', node: 'n4' });
    env.stabilize();
    expect(env.node('n1').core.status().voters.slice().sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    // With 4 voters, a quorum is 3: two followers down blocks commits.
    env.isolate('n2');
    env.isolate('n3');
    env.propose('n1', 'stuck');
    env.stabilize();
    expect(env.node('n4').applied).not.toContain('stuck');
    env.heal();
    settle(env, 10);
    expect(env.node('n4').applied).toContain('stuck');
  });

  it('one change at a time: a second is refused until the first is applied', () => {
    const env = elected();
    env.addNode('n4');
    env.addNode('n5');
    env.hold('n1');
    env.node('n1').core.proposeConfChange({ kind: 'addLearner', node: 'n4' });
    expect(() => env.node('n1').core.proposeConfChange({ kind: 'addLearner', node: 'n5' })).toThrowError(
      expect.objectContaining({ code: RaftErrorCode.ConfChangeRejected }),
    );
    env.release('n1');
    env.stabilize();
    expect(() => env.proposeConf('n1', { kind: 'addLearner', node: 'n5' })).not.toThrow();
  });

  it('a new leader changes nothing before it has committed an entry of its term', () => {
    const env = new InteractionEnv(3);
    env.campaign('n1');
    env.deliver();
    env.deliver();
    env.deliver();
    env.deliver(); // elected; the no-op is not acknowledged yet
    expect(env.node('n1').core.currentRole).toBe('leader');
    expect(() => env.node('n1').core.proposeConfChange({ kind: 'remove', node: 'n3' })).toThrowError(
      /not yet committed/,
    );
  });

  it('refuses to remove the last voter, or a stranger', () => {
    const env = new InteractionEnv(1);
    env.tickAll(1);
    env.stabilize();
    expect(() => env.node('n1').core.proposeConfChange({ kind: 'remove', node: 'n1' })).toThrowError(
      /no voter/,
    );
    expect(() => env.node('n1').core.proposeConfChange({ kind: 'remove', node: 'n9' })).toThrowError(
      /not a member/,
    );
  });

  it('removing the leader: it hands over and steps down; the rest go on; it does not disrupt', () => {
    const env = elected();
    env.propose('n1', 'before');
    env.stabilize();
    env.proposeConf('n1', { kind: 'remove', node: 'n1' });
    env.stabilize();
    expect(env.node('n1').core.currentRole).toBe('follower');
    const lead = env.leader();
    expect(lead === 'n2' || lead === 'n3').toBe(true);
    expect(env.node(lead!).core.status().voters.slice().sort()).toEqual(['n2', 'n3']);
    const term = env.node(lead!).core.currentTerm;
    // The removed node keeps running, ticking, and never gets to campaign.
    settle(env, 200);
    expect(env.leader()).toBe(lead);
    expect(env.node(lead!).core.currentTerm).toBe(term);
    env.propose(lead!, 'after');
    env.stabilize();
    expect(env.node(lead === 'n2' ? 'n3' : 'n2').applied).toContain('after');
  });

  it('a removed node that never learned of its removal stays harmless (PreVote + CheckQuorum)', () => {
    const env = elected();
    env.isolate('n3');
    env.proposeConf('n1', { kind: 'remove', node: 'n3' });
    env.stabilize();
    expect(env.node('n1').core.status().voters.slice().sort()).toEqual(['n1', 'n2']);
    settle(env, 100); // n3 times out and pre-campaigns, alone
    env.heal();
    settle(env, 200);
    expect(env.leader()).toBe('n1');
    expect(env.node('n1').core.currentTerm).toBe(2);
  });

  it('promotion changes the quorum for commits and elections', () => {
    const env = elected(3);
    env.addNode('n4');
    env.addNode('n5');
    for (const id of ['n4', 'n5']) {
      env.proposeConf('n1', { kind: 'addLearner', node: id });
      env.stabilize();
      env.proposeConf('n1', { kind: 'addVoter', node: id });
      env.stabilize();
    }
    expect(env.node('n5').core.status().voters.slice().sort()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    // Remove two of the originals, leader included.
    env.proposeConf('n1', { kind: 'remove', node: 'n2' });
    env.stabilize();
    env.proposeConf('n1', { kind: 'remove', node: 'n1' });
    env.stabilize();
    settle(env, 60);
    const lead = env.leader();
    expect(['n3', 'n4', 'n5']).toContain(lead);
    env.propose(lead!, 'x');
    env.stabilize();
    for (const id of ['n3', 'n4', 'n5']) expect(env.node(id).applied).toContain('x');
  });
});
