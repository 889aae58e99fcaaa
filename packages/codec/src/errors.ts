/**
 * Stable error codes of the wire format and the network transports. Codes never change
 * meaning once published: match on `err.code`, not on messages.
 */
export const TransportErrorCode = {
  /** The transport options are invalid; `issues` lists every problem found. */
  InvalidConfig: 'TRANSPORT_INVALID_CONFIG',
  /** A frame could not be decoded: not msgpack, truncated, or trailing bytes. */
  MalformedFrame: 'MALFORMED_FRAME',
  /** A frame is larger than the configured maximum. */
  FrameTooLarge: 'FRAME_TOO_LARGE',
  /** A frame decoded, but its content does not match the message schema. */
  InvalidMessage: 'INVALID_MESSAGE',
  /** The peer speaks another protocol version. */
  VersionMismatch: 'VERSION_MISMATCH',
  /** The peer belongs to another cluster. */
  ClusterMismatch: 'CLUSTER_MISMATCH',
  /** The peer claims a node id that is not a configured member, or not the one dialled. */
  UnknownPeer: 'UNKNOWN_PEER',
  /** The peer could not prove knowledge of the cluster secret. */
  AuthFailed: 'AUTH_FAILED',
  /** The handshake did not complete in time, or the peer broke its sequence. */
  HandshakeFailed: 'HANDSHAKE_FAILED',
  /** The peer refused our handshake; `reason` says why. */
  Refused: 'REFUSED',
  /** A message was addressed to another node or claims another sender than the connection's. */
  Misrouted: 'MISROUTED',
  /** The transport is closed, or was used in the wrong state. */
  Closed: 'TRANSPORT_CLOSED',
} as const;
export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

/** Base class of every error this package (and the transports built on it) raises. */
export class TransportError extends Error {
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
    this.code = code;
  }
}

/** Invalid transport options; every problem is listed, not only the first. */
export class TransportConfigError extends TransportError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(TransportErrorCode.InvalidConfig, `invalid transport options:\n  - ${issues.join('\n  - ')}`);
    this.name = 'TransportConfigError';
    this.issues = issues;
  }
}

/** A frame from the network that must not be used; the connection it came on is closed. */
export class FrameError extends TransportError {
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'FrameError';
  }
}

export function isTransportError(err: unknown, code?: TransportErrorCode): err is TransportError {
  return err instanceof TransportError && (code === undefined || err.code === code);
}
