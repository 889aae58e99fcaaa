/**
 * Rules that relate several fields: the mistakes that break clusters rather than parsers.
 * Each rule names the fields it reads; it runs only when those parsed cleanly, so one run
 * reports field errors and cross-field errors together without piling one on the other.
 */
import { listenAddressOf, parseClientUrl, parseHostPort, parseProtocolUrl } from './address.js';
import { selfMember } from './derive.js';
import { ConfigRule } from './errors.js';
import type { ParsedConfig } from './schema.js';

export interface RuleIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export interface CrossRule {
  readonly rule: ConfigRule;
  /** Keys (prefixes) the rule reads. */
  readonly uses: readonly string[];
  /** `show(key)` renders a key with its value's source, for messages. */
  check(c: ParsedConfig, show: (key: string) => string): RuleIssue[];
}

/** Heartbeats that must fit in one election timeout; fewer and one lost heartbeat starts an election. */
export const MIN_HEARTBEATS_PER_ELECTION = 3;
/** Room in a log entry beside the largest value: key (≤ 512 B), client id, sequence, framing. */
export const ENTRY_OVERHEAD_BYTES = 4096;

const normalizeHostPort = (s: string): string | null => {
  const r = parseHostPort(s, 0);
  return r.ok ? `${r.value.host.toLowerCase()}:${r.value.port}` : null;
};
const normalizeUrl = (s: string): string | null => {
  const r = /^quorates?:/.test(s) ? parseProtocolUrl(s) : parseClientUrl(s);
  return r.ok ? `${r.value.host.toLowerCase()}:${r.value.port}` : null;
};

export const crossRules: readonly CrossRule[] = [
  {
    rule: ConfigRule.ElectionVsHeartbeat,
    uses: ['raft.electionTimeoutMs', 'raft.heartbeatIntervalMs'],
    check(c, show) {
      const { electionTimeoutMs: et, heartbeatIntervalMs: hb } = c.raft;
      if (et >= MIN_HEARTBEATS_PER_ELECTION * hb) return [];
      return [
        {
          path: ['raft', 'electionTimeoutMs'],
          message:
            `${et} ms is shorter than ${MIN_HEARTBEATS_PER_ELECTION} heartbeats (${show('raft.heartbeatIntervalMs')} = ${hb} ms); ` +
            `followers would start elections between heartbeats: raise it to at least ${MIN_HEARTBEATS_PER_ELECTION * hb} ms or lower the heartbeat interval`,
        },
      ];
    },
  },
  {
    rule: ConfigRule.LeaseReadsNeedCheckQuorum,
    uses: ['raft.leaseReads', 'raft.checkQuorum'],
    check(c, show) {
      if (!c.raft.leaseReads || c.raft.checkQuorum) return [];
      return [
        {
          path: ['raft', 'leaseReads'],
          message: `lease reads rest on followers refusing votes while a leader is live, which is CheckQuorum (${show('raft.checkQuorum')} = false): turn checkQuorum on or leaseReads off`,
        },
      ];
    },
  },
  {
    rule: ConfigRule.GroupsNeed,
    uses: ['groups', 'transport.kind', 'raft.leaseReads'],
    check(c, show) {
      if (c.groups <= 1) return [];
      const out: RuleIssue[] = [];
      if (c.transport.kind !== 'tcp')
        out.push({
          path: ['transport', 'kind'],
          message: `a sharded cluster (${show('groups')} = ${c.groups}) carries its groups over the TCP transport only: set transport.kind to tcp or groups to 1`,
        });
      if (c.raft.leaseReads)
        out.push({
          path: ['raft', 'leaseReads'],
          message: `idle groups of a sharded cluster (${show('groups')} = ${c.groups}) stop heartbeating, and a lease needs heartbeats: turn leaseReads off or set groups to 1`,
        });
      return out;
    },
  },
  {
    rule: ConfigRule.HeartbeatVsTick,
    uses: ['raft.heartbeatIntervalMs', 'raft.tickMs'],
    check(c, show) {
      if (c.raft.heartbeatIntervalMs >= c.raft.tickMs) return [];
      return [
        {
          path: ['raft', 'heartbeatIntervalMs'],
          message: `${c.raft.heartbeatIntervalMs} ms is shorter than one tick (${show('raft.tickMs')} = ${c.raft.tickMs} ms)`,
        },
      ];
    },
  },
  {
    rule: ConfigRule.RenewalVsTtl,
    uses: ['leases.checkIntervalMs', 'leases.minTtlMs'],
    check(c, show) {
      if (c.leases.checkIntervalMs < c.leases.minTtlMs) return [];
      return [
        {
          path: ['leases', 'checkIntervalMs'],
          message:
            `${c.leases.checkIntervalMs} ms is not shorter than the shortest lease (${show('leases.minTtlMs')} = ${c.leases.minTtlMs} ms); ` +
            'leases would outlive their TTL by up to a whole interval: make it shorter than leases.minTtlMs',
        },
      ];
    },
  },
  {
    rule: ConfigRule.MinAboveMax,
    uses: ['leases.minTtlMs', 'leases.maxTtlMs'],
    check(c, show) {
      if (c.leases.minTtlMs <= c.leases.maxTtlMs) return [];
      return [
        {
          path: ['leases', 'minTtlMs'],
          message: `${c.leases.minTtlMs} ms is above ${show('leases.maxTtlMs')} = ${c.leases.maxTtlMs} ms`,
        },
      ];
    },
  },
  {
    rule: ConfigRule.DuplicateMemberId,
    uses: ['members'],
    check(c) {
      const seen = new Map<string, number>();
      const out: RuleIssue[] = [];
      c.members.forEach((m, i) => {
        const first = seen.get(m.id);
        if (first === undefined) seen.set(m.id, i);
        else
          out.push({ path: ['members', i, 'id'], message: `"${m.id}" is also the id of members[${first}]` });
      });
      return out;
    },
  },
  {
    rule: ConfigRule.DuplicateMemberAddress,
    uses: ['members'],
    check(c) {
      const out: RuleIssue[] = [];
      for (const [field, norm] of [
        ['peerAddress', normalizeHostPort],
        ['clientAddress', normalizeUrl],
        ['protocolAddress', normalizeUrl],
      ] as const) {
        const seen = new Map<string, number>();
        c.members.forEach((m, i) => {
          const v = m[field];
          if (v === undefined) return;
          const k = norm(v);
          if (k === null) return;
          const first = seen.get(k);
          if (first === undefined) seen.set(k, i);
          else
            out.push({
              path: ['members', i, field],
              message: `"${v}" is also the ${field} of members[${first}] (${c.members[first]!.id})`,
            });
        });
      }
      return out;
    },
  },
  {
    rule: ConfigRule.SelfNotMember,
    uses: ['nodeId', 'members'],
    check(c, show) {
      if (selfMember(c)) return [];
      const ids = c.members.map((m) => m.id).join(', ');
      return [
        {
          path: ['nodeId'],
          message: `"${c.nodeId}" is not one of the members (${ids}, from ${show('members')}); set nodeId to one of them or add this node to members`,
        },
      ];
    },
  },
  {
    rule: ConfigRule.ListenConflict,
    uses: [
      'nodeId',
      'members',
      'transport.listen',
      'http.listen',
      'client.listen',
      'metrics.listen',
      'metrics.enabled',
    ],
    check(c, show) {
      const self = selfMember(c);
      if (!self) return [];
      const listeners: { key: string; addr: string }[] = [
        { key: 'transport.listen', addr: c.transport.listen ?? self.member.peerAddress },
        { key: 'http.listen', addr: c.http.listen ?? listenAddressOf(self.member.clientAddress) ?? '' },
      ];
      const client =
        c.client.listen ??
        (self.member.protocolAddress ? listenAddressOf(self.member.protocolAddress) : null);
      if (client) listeners.push({ key: 'client.listen', addr: client });
      if (c.metrics.enabled && c.metrics.listen !== undefined)
        listeners.push({ key: 'metrics.listen', addr: c.metrics.listen });
      const out: RuleIssue[] = [];
      for (let i = 0; i < listeners.length; i++) {
        for (let j = 0; j < i; j++) {
          const a = parseHostPort(listeners[i]!.addr, 0);
          const b = parseHostPort(listeners[j]!.addr, 0);
          if (!a.ok || !b.ok || a.value.port === 0 || a.value.port !== b.value.port) continue;
          const wildcard = (h: string) => h === '0.0.0.0' || h === '[::]';
          if (a.value.host === b.value.host || wildcard(a.value.host) || wildcard(b.value.host)) {
            out.push({
              path: listeners[i]!.key.split('.'),
              message: `${listeners[i]!.addr} is also where ${show(listeners[j]!.key)} listens (${listeners[j]!.addr}); give each listener its own port`,
            });
          }
        }
      }
      return out;
    },
  },
  {
    rule: ConfigRule.TlsIncomplete,
    uses: ['transport.tls'],
    check(c) {
      const t = c.transport.tls;
      if (!t.enabled) return [];
      return (['certFile', 'keyFile', 'caFile'] as const)
        .filter((k) => t[k] === undefined)
        .map((k) => ({
          path: ['transport', 'tls', k],
          message: `TLS is enabled (transport.tls.enabled) but transport.tls.${k} is not set`,
        }));
    },
  },
  {
    rule: ConfigRule.TlsIncomplete,
    uses: ['http.tls'],
    check(c) {
      const t = c.http.tls;
      if (!t.enabled) return [];
      const need = ['certFile', 'keyFile', ...(t.requireClientCert ? (['caFile'] as const) : [])] as const;
      const out = need
        .filter((k) => t[k] === undefined)
        .map((k) => ({
          path: ['http', 'tls', k],
          message: `TLS is enabled for the HTTP API (http.tls.enabled) but http.tls.${k} is not set`,
        }));
      for (const m of c.members) {
        if (!m.clientAddress.startsWith('https://')) {
          out.push({
            path: ['members'],
            message: `http.tls.enabled: member ${m.id}'s clientAddress ${m.clientAddress} must start with https://`,
          });
        }
        if (m.protocolAddress !== undefined && !m.protocolAddress.startsWith('quorates://')) {
          out.push({
            path: ['members'],
            message: `http.tls.enabled: the client protocol is served over TLS too, so member ${m.id}'s protocolAddress ${m.protocolAddress} must start with quorates://`,
          });
        }
      }
      return out;
    },
  },
  {
    rule: ConfigRule.ValueExceedsEntry,
    uses: ['kv.maxValueBytes', 'raft.maxEntryBytes'],
    check(c, show) {
      const need = c.kv.maxValueBytes + ENTRY_OVERHEAD_BYTES;
      if (need <= c.raft.maxEntryBytes) return [];
      return [
        {
          path: ['kv', 'maxValueBytes'],
          message: `a ${c.kv.maxValueBytes}-byte value plus ${ENTRY_OVERHEAD_BYTES} bytes of key and headers does not fit in one log entry (${show('raft.maxEntryBytes')} = ${c.raft.maxEntryBytes}); raise raft.maxEntryBytes to at least ${need} or lower kv.maxValueBytes`,
        },
      ];
    },
  },
];
