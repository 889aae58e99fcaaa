/**
 * Defaults that depend on other fields: a node listens where its own member entry says
 * peers and clients will find it, and keeps its data under `data/<nodeId>`. Pure.
 */
import { listenAddressOf } from './address.js';
import type { Config, Member, ParsedConfig } from './schema.js';

export interface Derivation {
  /** The key that was filled in. */
  readonly key: string;
  /** The key it was taken from. */
  readonly from: string;
}

/** This node's own entry in `members` and its position, if present. */
export function selfMember(
  c: Pick<ParsedConfig, 'nodeId' | 'members'>,
): { member: Member; index: number } | null {
  const index = c.members.findIndex((m) => m.id === c.nodeId);
  return index < 0 ? null : { member: c.members[index]!, index };
}

/** Fill in the derived defaults; requires `nodeId` to be one of `members`. */
export function derive(c: ParsedConfig): { config: Config; derived: Derivation[] } {
  const self = selfMember(c);
  if (!self) throw new Error(`derive: ${c.nodeId} is not a member (validate first)`);
  const derived: Derivation[] = [];
  const at = `members[${self.index}]`;
  let transportListen = c.transport.listen;
  if (transportListen === undefined) {
    transportListen = self.member.peerAddress;
    derived.push({ key: 'transport.listen', from: `${at}.peerAddress` });
  }
  let httpListen = c.http.listen;
  if (httpListen === undefined) {
    httpListen = listenAddressOf(self.member.clientAddress) ?? '127.0.0.1:8081';
    derived.push({ key: 'http.listen', from: `${at}.clientAddress` });
  }
  let clientListen = c.client.listen;
  if (clientListen === undefined && self.member.protocolAddress !== undefined) {
    clientListen = listenAddressOf(self.member.protocolAddress) ?? undefined;
    derived.push({ key: 'client.listen', from: `${at}.protocolAddress` });
  }
  let dataDir = c.storage.dataDir;
  if (dataDir === undefined) {
    dataDir = `data/${c.nodeId}`;
    derived.push({ key: 'storage.dataDir', from: 'nodeId' });
  }
  return {
    config: {
      ...c,
      transport: { ...c.transport, listen: transportListen },
      http: { ...c.http, listen: httpListen },
      client: { ...c.client, ...(clientListen !== undefined ? { listen: clientListen } : {}) },
      storage: { ...c.storage, dataDir },
    },
    derived,
  };
}
