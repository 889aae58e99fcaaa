/**
 * The conformance harness for network transports: clusters of real listeners on
 * 127.0.0.1 with OS-chosen ports, members in-process or in child processes, TLS from a
 * test PKI, and intruders that speak the wire protocol wrongly on purpose.
 */

import { FRAME_HEADER_BYTES, FrameKind, frame, PROTOCOL_VERSION, secretBytes } from '@quorate/codec';
import type { Message, NodeId } from '@quorate/raft';
import {
  type HarnessCluster,
  type HarnessClusterOptions,
  type HarnessMember,
  type IntrusionKind,
  type IntrusionOutcome,
  PLAIN_INTRUSIONS,
  type RecordedMember,
  recordTransport,
  type TransportHarness,
} from '@quorate/raft/testing';
import type { NetworkTransport } from '@quorate/transport-engine';
import type { MemberConfig, TestTls, TransportKit } from './config.js';
import { MemberProcess } from './member-process.js';
import { testPki } from './pki.js';
import { type HandshakeParams, WireClient } from './wire-client.js';

export const TEST_CLUSTER = 'conformance';
export const TEST_SECRET = 'conformance-secret-0123456789';
/**
 * A member that exists only in the configuration: intruders that authenticate correctly
 * claim it, so they never displace a real member's connection.
 */
export const PHANTOM = 'phantom';
/** A port nothing listens on. */
const NOWHERE = 1;

/** Server- and client-side TLS settings for a cluster in `mode`. */
export function clusterTls(mode: 'mutual' | 'server-only'): TestTls {
  const pki = testPki();
  return mode === 'mutual'
    ? { ca: pki.ca, cert: pki.member.cert, key: pki.member.key, requireClientCert: true }
    : { ca: pki.ca, cert: pki.member.cert, key: pki.member.key, requireClientCert: false };
}

interface Local {
  readonly net: NetworkTransport;
  rec: RecordedMember | null;
}
type Member = Local | MemberProcess;

export interface NetworkHarnessOptions {
  /** Transport options for every member (for example smaller queues to make a test quicker). */
  readonly options?: MemberConfig['options'];
  readonly timeScale?: number;
}

/** A `TransportHarness` for a network transport, for `transportConformanceCases`. */
export function networkHarness(
  kit: TransportKit,
  harnessOptions: NetworkHarnessOptions = {},
): TransportHarness {
  return {
    name: kit.name,
    intrusions: PLAIN_INTRUSIONS,
    tlsIntrusions: ['no-client-certificate', 'foreign-certificate', 'plaintext-to-tls', 'wrong-secret'],
    tls: ['mutual', 'server-only'],
    processes: true,
    pause: true,
    timeScale: harnessOptions.timeScale ?? 1,
    cluster: (ids, opts) => startCluster(kit, ids, opts ?? {}, harnessOptions),
  };
}

async function startCluster(
  kit: TransportKit,
  ids: readonly NodeId[],
  opts: HarnessClusterOptions,
  hopts: NetworkHarnessOptions,
): Promise<HarnessCluster> {
  const tls = opts.tls ? clusterTls(opts.tls) : undefined;
  const inProcesses = new Set(opts.processes ?? []);
  const members = new Map<NodeId, Member>();
  const ports = new Map<NodeId, number>();
  const peers: Record<NodeId, string> = {};
  const configFor = (id: NodeId, port: number): MemberConfig => ({
    id,
    clusterId: TEST_CLUSTER,
    secret: TEST_SECRET,
    peers: { ...peers },
    port,
    ...(tls ? { tls } : {}),
    options: {
      connectTimeoutMs: 2000,
      handshakeTimeoutMs: 2000,
      backoffMaxMs: 250,
      closeTimeoutMs: 500,
      ...hopts.options,
    },
  });

  /** Listen on `port` (0: any), without starting. */
  const listen = async (id: NodeId, port: number): Promise<Member> => {
    const config = configFor(id, port);
    if (inProcesses.has(id)) return MemberProcess.spawn(kit.memberScript, config);
    const net = kit.create(config);
    try {
      await net.listen();
    } catch (err) {
      await net.close();
      throw err;
    }
    return { net, rec: null };
  };
  const begin = async (id: NodeId, m: Member): Promise<Member> => {
    if (m instanceof MemberProcess) {
      await m.setPeers(peers);
      await m.start();
      return m;
    }
    m.net.setPeers(peers);
    m.rec = await recordTransport(id, m.net);
    return m;
  };
  const addressOf = (m: Member) => (m instanceof MemberProcess ? m.address : m.net.address!);
  const portOf = (addr: string) => Number(/:(\d+)(?:\/|$)/.exec(addr)![1]);

  try {
    for (const id of ids) members.set(id, await listen(id, 0));
    for (const [id, m] of members) {
      peers[id] = addressOf(m);
      ports.set(id, portOf(peers[id]!));
    }
    peers[PHANTOM] = peers[ids[0]!]!.replace(/:\d+(\/|$)/, `:${NOWHERE}$1`);
    for (const [id, m] of members) await begin(id, m);
  } catch (err) {
    for (const m of members.values()) await stopMember(m);
    throw err;
  }

  const rejections = async (id: NodeId) => {
    const m = members.get(id)!;
    const s = m instanceof MemberProcess ? (await m.stats()).stats : m.net.stats();
    return s.framesRejected + s.handshakeFailures;
  };

  return {
    member: (id): HarnessMember => {
      const m = members.get(id)!;
      return m instanceof MemberProcess ? m : m.rec!;
    },
    stop: async (id) => stopMember(members.get(id)!),
    start: async (id) => {
      const m = await listen(id, ports.get(id)!);
      members.set(id, await begin(id, m));
    },
    pause: async (id) => {
      const m = members.get(id);
      if (!(m instanceof MemberProcess)) throw new Error(`${id} is not a process`);
      m.pause();
    },
    resume: async (id) => {
      const m = members.get(id);
      if (m instanceof MemberProcess) m.resume();
    },
    rejections,
    intrude: (target, kind, marker) => intrude(kit, peers[target]!, target, kind, marker, tls),
    close: async () => {
      await Promise.all([...members.values()].map(stopMember));
    },
  };
}

async function stopMember(m: Member): Promise<void> {
  if (m instanceof MemberProcess) await m.kill();
  else if (m.rec) await m.rec.close();
  else await m.net.close();
}

const markerFrom = (from: NodeId, to: NodeId, marker: number): Message => ({
  type: 'heartbeat',
  from,
  to,
  term: 1,
  commit: 0,
  readRound: marker,
});

/** Carry out one intrusion against the listener at `address` (member `target`). */
export async function intrude(
  kit: TransportKit,
  address: string,
  target: NodeId,
  kind: IntrusionKind,
  marker: number,
  tls?: TestTls,
): Promise<IntrusionOutcome> {
  const pki = tls ? testPki() : null;
  // The intruder's own TLS: the cluster's client certificate, unless the attack is about that.
  let clientTls: TestTls | undefined = tls ? { ...tls, requireClientCert: false } : undefined;
  if (kind === 'no-client-certificate') clientTls = { ca: pki!.ca, requireClientCert: false };
  if (kind === 'foreign-certificate') clientTls = { ca: pki!.ca, ...pki!.foreign, requireClientCert: false };
  if (kind === 'plaintext-to-tls') clientTls = undefined;
  const layer = kit.dialer(clientTls);
  const good: HandshakeParams = {
    clusterId: TEST_CLUSTER,
    secret: secretBytes(TEST_SECRET),
    from: PHANTOM,
    to: target,
  };

  let c: WireClient;
  try {
    c = await WireClient.dial(layer, address);
  } catch (err) {
    return { refused: true, detail: `could not even connect: ${(err as Error).message}` };
  }
  try {
    const sendMarker = (from = PHANTOM) => c.sendMessage(TEST_CLUSTER, markerFrom(from, target, marker));
    const afterHandshake = async (params = good, replay?: Buffer[]) => {
      const answer = await c.handshake(params, replay ? { replay } : {});
      if (answer?.kind === FrameKind.Welcome) return { welcomed: true, detail: 'welcomed' };
      const why = answer?.kind === FrameKind.Refuse ? `refused: ${answer.reason} (${answer.code})` : 'closed';
      return { welcomed: false, detail: why };
    };
    const refusedHandshake = async (params: typeof good, replay?: Buffer[]): Promise<IntrusionOutcome> => {
      const r = await afterHandshake(params, replay);
      sendMarker(params.from);
      const closed = await c.waitClosed();
      return { refused: !r.welcomed && closed, detail: `${r.detail}; closed: ${closed}` };
    };
    /** Authenticate properly as the phantom member, then misbehave: the listener must close. */
    const badAfterAuth = async (misbehave: () => void): Promise<IntrusionOutcome> => {
      const r = await afterHandshake();
      if (!r.welcomed)
        return { refused: false, detail: `the correct handshake did not succeed: ${r.detail}` };
      misbehave();
      const closed = await c.waitClosed();
      return {
        refused: closed,
        detail: closed ? 'closed after the bad frame' : 'still open after the bad frame',
      };
    };

    // `return await`: the connection is destroyed in `finally`, only after the outcome is known.
    switch (kind) {
      case 'garbage-before-handshake': {
        const junk = Buffer.from(Array.from({ length: 60 }, (_, i) => (i * 97 + 13) & 0xff));
        c.write(frame(junk));
        sendMarker();
        const closed = await c.waitClosed();
        return { refused: closed, detail: `closed: ${closed}` };
      }
      case 'oversized-frame':
        return await badAfterAuth(() => {
          const header = Buffer.alloc(FRAME_HEADER_BYTES);
          header.writeUInt32BE(0xffff_fff0);
          c.write(Buffer.concat([header, Buffer.alloc(1024)]));
          sendMarker();
        });
      case 'truncated-frame':
        return await badAfterAuth(() => {
          const half = Buffer.alloc(64 + FRAME_HEADER_BYTES);
          half.writeUInt32BE(500);
          c.write(half);
          c.end();
        });
      case 'schema-breaking-frame':
        return await badAfterAuth(() => {
          c.sendMessage(TEST_CLUSTER, { ...markerFrom(PHANTOM, target, marker), term: -1 } as Message);
          sendMarker();
        });
      case 'spoofed-sender':
        return await badAfterAuth(() => {
          c.sendMessage(TEST_CLUSTER, markerFrom('someone-else', target, marker));
          sendMarker();
        });
      case 'wrong-cluster':
        return await refusedHandshake({ ...good, clusterId: 'another-cluster' });
      case 'wrong-secret':
        return await refusedHandshake({ ...good, secret: secretBytes('not-the-secret-0123456789') });
      case 'unknown-member':
        return await refusedHandshake({ ...good, from: 'stranger' });
      case 'wrong-version':
        return await refusedHandshake({ ...good, version: PROTOCOL_VERSION + 1 });
      case 'replayed-handshake': {
        // Record a successful handshake, then play its frames again on a new connection.
        const first = await afterHandshake();
        if (!first.welcomed)
          return { refused: false, detail: `the correct handshake did not succeed: ${first.detail}` };
        const recorded = [...c.written];
        c.destroy();
        c = await WireClient.dial(layer, address);
        return await refusedHandshake(good, recorded);
      }
      case 'no-client-certificate':
      case 'foreign-certificate':
      case 'plaintext-to-tls':
        return await refusedHandshake(good);
    }
  } finally {
    c.destroy();
  }
}
