/**
 * Members: who is in the cluster. Besides a YAML list, one string can describe them, which
 * is what an environment variable or a flag can carry:
 *
 * - `local:3` — the loopback layout: `n1`…`n3`, Raft on 127.0.0.1:7001…7003, HTTP on
 *   http://127.0.0.1:8081…8083, the client protocol on quorate://127.0.0.1:9081…9083.
 * - `n1=10.0.0.1:7001=http://10.0.0.1:8081,n2=…` — id, peer address and client address,
 *   and optionally a fourth part, the client-protocol address (`=quorate://10.0.0.1:9081`).
 * - A YAML or JSON flow sequence: `[{id: n1, peerAddress: …, clientAddress: …}]`.
 */
import { parse } from 'yaml';

export interface Member {
  /** The member's id, as in `nodeId`. */
  readonly id: string;
  /** `host:port` the Raft transport of this member listens on and peers dial. */
  readonly peerAddress: string;
  /** `http(s)://host:port` of its HTTP API, where clients are redirected. */
  readonly clientAddress: string;
  /** `quorate://host:port` of its client protocol, where protocol clients are redirected. */
  readonly protocolAddress?: string;
}

export interface LocalLayout {
  host?: string;
  peerBasePort?: number;
  httpBasePort?: number;
  protocolBasePort?: number;
}

/** The loopback development layout of `n` members. */
export function localMembers(n: number, layout: LocalLayout = {}): Member[] {
  const host = layout.host ?? '127.0.0.1';
  const peer = layout.peerBasePort ?? 7001;
  const http = layout.httpBasePort ?? 8081;
  const protocol = layout.protocolBasePort ?? 9081;
  return Array.from({ length: n }, (_, i) => ({
    id: `n${i + 1}`,
    peerAddress: `${host}:${peer + i}`,
    clientAddress: `http://${host}:${http + i}`,
    protocolAddress: `quorate://${host}:${protocol + i}`,
  }));
}

/**
 * Expand the one-string forms into a list; anything else is returned unchanged for the
 * schema to judge. Never throws.
 */
export function expandMembers(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const s = value.trim();
  const local = /^local:(\d{1,3})$/.exec(s);
  if (local) {
    const n = Number(local[1]);
    return n >= 1 && n <= 99 ? localMembers(n) : value;
  }
  if (s.startsWith('[')) {
    try {
      return parse(s);
    } catch {
      return value;
    }
  }
  const items = s.split(',').map((x) => x.trim());
  const out: Member[] = [];
  for (const item of items) {
    const parts = item.split('=');
    if (parts.length < 3 || parts.length > 4 || parts.some((p) => p.length === 0)) return value;
    out.push({
      id: parts[0]!,
      peerAddress: parts[1]!,
      clientAddress: parts[2]!,
      ...(parts[3] !== undefined ? { protocolAddress: parts[3] } : {}),
    });
  }
  return out;
}
