export * from './errors.js';
export {
  type Challenge,
  decodeHandshake,
  decodeMessage,
  describeVersion,
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
  messageFromEnvelope,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  type Refusal,
  unpackPayload,
} from './wire/envelope.js';
export { FRAME_HEADER_BYTES, FrameReader, frame, MAX_FRAME_LIMIT } from './wire/frames.js';
export {
  encodeGroupMessageFrame,
  encodeHostFrame,
  GROUPS_PROTOCOL_VERSION,
  type GroupDelivery,
  GroupFrameKind,
  groupEnvelopeFrom,
  groupIdOf,
} from './wire/groups.js';
export { freshNonce, handshakeProof, type ProofInput, secretBytes, verifyProof } from './wire/handshake.js';
export {
  defaultWireLimits,
  describe,
  isNodeId,
  MessageCode,
  messageFromTuple,
  messageToTuple,
  type WireLimits,
} from './wire/messages.js';
export {
  decodeSnapshotFrame,
  encodeSnapshotFrame,
  isSnapshotFrameKind,
  type SnapshotFrame,
  SnapshotFrameKind,
  type SnapshotMessage,
} from './wire/snapshot-frames.js';
