/**
 * Mutual authentication on a shared cluster secret, without the secret on the wire.
 *
 *   initiator → HELLO(version, cluster, from=I, to=R, nonceI)
 *   responder   checks version, cluster, that R is itself and I a configured member
 *   responder → CHALLENGE(version, cluster, from=R, nonceR, proofR)
 *   initiator   checks proofR
 *   initiator → AUTH(proofI)
 *   responder   checks proofI
 *   responder → WELCOME                        (or REFUSE with a reason, then close)
 *
 *   proofX = HMAC-SHA256(secret, label_X ‖ cluster ‖ I ‖ R ‖ nonceI ‖ nonceR)
 *
 * Each side proves knowledge of the secret over a nonce the other side just chose, so a
 * recorded handshake is useless later (replay), and the role label keeps one side's proof
 * from being reflected back as the other's. Fields are length-prefixed, so no two
 * different tuples hash alike. Without TLS the handshake authenticates the connection at
 * its start but does not protect what follows from an active attacker on the path; use TLS
 * on networks you do not trust.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '@quorate/raft';
import { NONCE_BYTES } from './envelope.js';

const encoder = new TextEncoder();
const LABEL_INITIATOR = encoder.encode('quorate/1 initiator');
const LABEL_RESPONDER = encoder.encode('quorate/1 responder');

export interface ProofInput {
  readonly clusterId: string;
  readonly initiator: NodeId;
  readonly responder: NodeId;
  readonly initiatorNonce: Uint8Array;
  readonly responderNonce: Uint8Array;
}

function lengthPrefixed(parts: readonly Uint8Array[]): Buffer {
  let n = 0;
  for (const p of parts) n += 4 + p.byteLength;
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  for (const p of parts) {
    out.writeUInt32BE(p.byteLength, off);
    out.set(p, off + 4);
    off += 4 + p.byteLength;
  }
  return out;
}

/** The proof the given role sends; 32 bytes. */
export function handshakeProof(secret: Uint8Array, role: 'initiator' | 'responder', p: ProofInput): Buffer {
  return createHmac('sha256', secret)
    .update(
      lengthPrefixed([
        role === 'initiator' ? LABEL_INITIATOR : LABEL_RESPONDER,
        encoder.encode(p.clusterId),
        encoder.encode(p.initiator),
        encoder.encode(p.responder),
        p.initiatorNonce,
        p.responderNonce,
      ]),
    )
    .digest();
}

/** Constant-time check of a proof received from the peer. */
export function verifyProof(
  secret: Uint8Array,
  role: 'initiator' | 'responder',
  p: ProofInput,
  proof: Uint8Array,
): boolean {
  const expected = handshakeProof(secret, role, p);
  return proof.byteLength === expected.byteLength && timingSafeEqual(proof, expected);
}

export function freshNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** The secret as bytes; strings are taken as UTF-8. */
export function secretBytes(secret: string | Uint8Array): Uint8Array {
  return typeof secret === 'string' ? encoder.encode(secret) : secret;
}
