/**
 * Counting for a transport that keeps no statistics of its own (the in-memory one, or a
 * custom one): wraps it and satisfies `TransportStatsSource`. Message sizes come from
 * `sizeOf`, since only the real wire format knows them.
 */
import type { Message, Transport, TransportHandler } from '@quorate/raft';
import type { PeerTransportStats, TransportStats, TransportStatsSource } from './stats.js';

interface PeerCounts {
  connected: boolean;
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  messagesDropped: number;
}

export interface InstrumentOptions {
  /** Size of a message on the wire, in bytes. Default: entry payload bytes. */
  sizeOf?: (m: Message) => number;
}

const payloadBytes = (m: Message): number => {
  let n = 0;
  if ('entries' in m && Array.isArray(m.entries)) for (const e of m.entries) n += e.data.byteLength;
  return n;
};

export class InstrumentedTransport implements Transport, TransportStatsSource {
  private readonly peers = new Map<string, PeerCounts>();
  private readonly sizeOf: (m: Message) => number;

  constructor(
    private readonly inner: Transport,
    opts: InstrumentOptions = {},
  ) {
    this.sizeOf = opts.sizeOf ?? payloadBytes;
  }

  private peer(id: string): PeerCounts {
    let p = this.peers.get(id);
    if (!p) {
      p = {
        connected: true,
        messagesSent: 0,
        bytesSent: 0,
        messagesReceived: 0,
        bytesReceived: 0,
        messagesDropped: 0,
      };
      this.peers.set(id, p);
    }
    return p;
  }

  start(handler: TransportHandler): Promise<void> {
    return this.inner.start({
      onMessage: (m) => {
        const p = this.peer(m.from);
        p.connected = true;
        p.messagesReceived++;
        p.bytesReceived += this.sizeOf(m);
        handler.onMessage(m);
      },
      onUnreachable: (peer) => {
        const p = this.peer(peer);
        p.connected = false;
        p.messagesDropped++;
        handler.onUnreachable?.(peer);
      },
    });
  }

  send(msg: Message): void {
    const p = this.peer(msg.to);
    p.messagesSent++;
    p.bytesSent += this.sizeOf(msg);
    this.inner.send(msg);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  transportStats(): TransportStats {
    const peers: PeerTransportStats[] = [];
    for (const [peer, c] of this.peers) peers.push({ peer, ...c });
    return { peers, framesRejected: 0 };
  }
}

export function instrumentTransport(inner: Transport, opts?: InstrumentOptions): InstrumentedTransport {
  return new InstrumentedTransport(inner, opts);
}
