/**
 * The receiving side of the transport benchmark, in a process of its own: a TCP or
 * WebSocket transport that answers every AppendEntries with an AppendEntries response,
 * as a follower would (without storage, so only the transport is measured).
 */

import type { Message } from '@quorate/raft';
import type { NetworkTransport } from '@quorate/transport-engine';
import { serveParent } from '@quorate/transport-kit';
import { TcpTransport } from '@quorate/transport-tcp';
import { WsTransport } from '@quorate/transport-ws';
import type { PeerConfig } from './transports.js';

let transport: NetworkTransport | null = null;

function create(c: PeerConfig): NetworkTransport {
  const common = { id: c.id, clusterId: c.clusterId, secret: c.secret, peers: c.peers, logger: null };
  const tls = c.tls ? { ...c.tls, requireClientCert: true } : undefined;
  return c.kind === 'tcp'
    ? new TcpTransport({ ...common, listen: { host: '127.0.0.1', port: 0 }, ...(tls ? { tls } : {}) })
    : new WsTransport({
        ...common,
        listen: { host: '127.0.0.1', port: 0, path: '/raft' },
        ...(tls ? { tls } : {}),
        ...(c.kind === 'ws-unmasked' ? { maskFrames: false } : {}),
      });
}

serveParent(async (m) => {
  switch (m.t) {
    case 'listen':
      transport = create(m.config as PeerConfig);
      return { address: await transport.listen() };
    case 'peers':
      transport!.setPeers(m.peers as Record<string, string>);
      return;
    case 'start': {
      const t = transport!;
      await t.start({
        onMessage: (msg: Message) => {
          if (msg.type !== 'append') return;
          t.send({
            type: 'appendResponse',
            from: msg.to,
            to: msg.from,
            term: msg.term,
            reject: false,
            index: msg.prevIndex + msg.entries.length,
            hintIndex: 0,
            hintTerm: 0,
          });
        },
      });
      return;
    }
    case 'cpu':
      return { cpu: process.cpuUsage() };
    case 'close':
      await transport?.close();
      return;
    default:
      throw new Error(`unknown request ${m.t}`);
  }
});
