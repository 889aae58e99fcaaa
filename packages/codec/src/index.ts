export * from './errors.js';
export { freshNonce, handshakeProof, type ProofInput, secretBytes, verifyProof } from './net/handshake.js';
export { type CloseReport, NetworkTransport } from './net/network-transport.js';
export {
  defaultNetworkOptions,
  HANDSHAKE_MAX_FRAME_BYTES,
  MIN_FRAME_BYTES,
  MIN_SECRET_BYTES,
  type NetworkTransportOptions,
  networkOptionIssues,
  type PeerAddress,
  type ResolvedOptions,
  resolveNetworkOptions,
  type TransportLogger,
} from './net/options.js';
export type { LinkState, PeerStats, TransportStats } from './net/stats.js';
export type { Connection, ConnectionEvents, StreamLayer } from './net/stream.js';
export {
  type Challenge,
  decodeHandshake,
  decodeMessage,
  type EnvelopeContext,
  encodeAuth,
  encodeChallenge,
  encodeHello,
  encodeMessageFrame,
  encodeRefuse,
  encodeWelcome,
  FrameKind,
  type HandshakeFrame,
  type Hello,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  type Refusal,
  unpackPayload,
} from './wire/envelope.js';
export { FRAME_HEADER_BYTES, FrameReader, frame, MAX_FRAME_LIMIT } from './wire/frames.js';
export {
  defaultWireLimits,
  isNodeId,
  MessageCode,
  messageFromTuple,
  messageToTuple,
  type WireLimits,
} from './wire/messages.js';
