/**
 * `quorate start --join <url>`: a brand-new node (empty storage) asks the cluster to add
 * it as a learner, waits until it has caught up, then asks to be promoted to voter.
 */
import { type Config, selfMember } from '@quorate/config';
import type { RunningNode } from './run.js';

export async function joinCluster(url: string, config: Config, running: RunningNode): Promise<void> {
  const log = running.log;
  const self = selfMember(config);
  if (!self) throw new Error(`node id ${config.nodeId} is not in members`);
  const me = self.member;
  const headers = {
    'content-type': 'application/json',
    ...(config.http.token ? { authorization: `Bearer ${config.http.token}` } : {}),
  };
  const call = async (base: string, method: string, path: string, body?: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const leader = async (): Promise<string> => {
    for (;;) {
      try {
        const h = await call(url, 'GET', '/health');
        if (h.body.isLeader) return url;
        if (typeof h.body.leaderAddress === 'string') return h.body.leaderAddress;
      } catch {
        // the member is not reachable yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const until = async (what: string, step: () => Promise<boolean>) => {
    for (;;) {
      try {
        if (await step()) return;
      } catch (err) {
        log.debug({ err: (err as Error).message }, `joining: ${what} failed; retrying`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  let role: string | null = null;
  await until('learn the members', async () => {
    const r = await call(url, 'GET', '/admin/members');
    if (r.status !== 200) return false;
    const list = r.body.members as {
      id: string;
      role: string;
      peerAddress: string;
      clientAddress: string;
      protocolAddress?: string | null;
    }[];
    for (const { protocolAddress, ...m } of list)
      running.node.learnMember({ ...m, ...(protocolAddress ? { protocolAddress } : {}) });
    role = list.find((m) => m.id === me.id)?.role ?? null;
    return true;
  });
  if (role === 'voter') {
    log.info('already a voter of the cluster; nothing to join');
    return;
  }
  await until('add as learner', async () => {
    const r = await call(await leader(), 'POST', '/admin/members', {
      id: me.id,
      peerAddress: me.peerAddress,
      clientAddress: me.clientAddress,
      ...(me.protocolAddress ? { protocolAddress: me.protocolAddress } : {}),
    });
    return r.status === 200 || (r.body.error as { code?: string } | undefined)?.code === 'ALREADY_MEMBER';
  });
  log.info('joined as a learner; catching up');
  await until('catch up', async () => {
    const h = await call(await leader(), 'GET', '/health');
    return running.node.raft.applied >= Number(h.body.commitIndex) - 100;
  });
  await until('promote', async () => {
    const r = await call(await leader(), 'POST', `/admin/members/${encodeURIComponent(me.id)}/promote`);
    return r.status === 200;
  });
  log.info('promoted to voter');
}
