import type { NodeId } from '@quorate/raft';

export type LinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/** One peer as seen from this member's outbound link to it. */
export interface PeerStats {
  readonly state: LinkState;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Bytes handed to the connection and not yet to the operating system. */
  readonly bufferedBytes: number;
  readonly messagesSent: number;
  /** Bytes on the wire of the messages sent (frame headers included). */
  readonly bytesSent: number;
  /** Messages from this peer delivered to the handler, and the frame bytes they came in. */
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  readonly messagesDropped: number;
  readonly reconnects: number;
}

/**
 * Counters a metrics exporter can read at any time (`transport.stats()`); they only grow,
 * except the per-peer gauges (`state`, `queued*`, `bufferedBytes`).
 */
export interface TransportStats {
  /** Messages handed to a connection, and their bytes on the wire (frame headers included). */
  readonly messagesSent: number;
  readonly bytesSent: number;
  /** Messages delivered to the handler, and the frame bytes they came in. */
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  /** Messages not sent: queue full, peer down, unknown peer, too large, or closed. */
  readonly messagesDropped: number;
  /** Frames from authenticated peers refused: malformed, oversized, truncated, wrong schema or routing. */
  readonly framesRejected: number;
  /** Connections that failed the handshake, in either direction (including timeouts). */
  readonly handshakeFailures: number;
  /** Inbound connections accepted by the listener (before any handshake). */
  readonly connectionsAccepted: number;
  /** Outbound connections re-established after an earlier one to the same peer. */
  readonly reconnects: number;
  readonly peers: Readonly<Record<NodeId, PeerStats>>;
}

/** The mutable counters behind `TransportStats`. */
export class Counters {
  messagesSent = 0;
  bytesSent = 0;
  messagesReceived = 0;
  bytesReceived = 0;
  messagesDropped = 0;
  framesRejected = 0;
  handshakeFailures = 0;
  connectionsAccepted = 0;
  reconnects = 0;
}
