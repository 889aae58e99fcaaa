/**
 * The one schema of a quorate node's configuration. Field checks live here; rules that
 * relate several fields live in `rules.ts`. Every leaf has a description (the README's
 * table is generated from it) and a default, so `{}` is a complete loopback config.
 *
 * Zod was chosen over valibot for its introspection (`def`, registries) that the
 * environment/flag mapping and the README generator walk, its `when` hook that lets
 * cross-field rules run beside field errors (so one run reports every problem), and
 * because configuration is parsed once at start, where valibot's smaller bundle buys
 * nothing.
 */
import * as z from 'zod';
import { parseClientUrl, parseHostPort, parseProtocolUrl } from './address.js';
import { expandMembers, localMembers } from './members.js';

export interface FieldMeta {
  readonly description: string;
  /** Redacted by `printConfig`. */
  readonly secret?: boolean;
}

/** Descriptions and flags of leaves, read by the field table and the printer. */
export const fieldMeta = z.registry<FieldMeta>();

function field<T extends z.ZodType>(schema: T, description: string, extra: { secret?: boolean } = {}): T {
  fieldMeta.add(schema, { description, ...extra });
  return schema;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const idSchema = z
  .string()
  .regex(ID, { message: 'must be 1–63 letters, digits, ".", "_" or "-", starting with a letter or digit' });

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const MiB = 1 << 20;

/** `host:port`; `minPort` 0 for listeners (the OS picks), 1 for addresses others dial. */
function hostPort(minPort: 0 | 1) {
  return z.string().superRefine((s, ctx) => {
    const r = parseHostPort(s, minPort);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message, params: { rule: r.rule } });
  });
}

const clientUrl = z.string().superRefine((s, ctx) => {
  const r = parseClientUrl(s);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message, params: { rule: r.rule } });
});

const protocolUrl = z.string().superRefine((s, ctx) => {
  const r = parseProtocolUrl(s);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message, params: { rule: r.rule } });
});

const memberSchema = z.strictObject({
  id: idSchema,
  peerAddress: hostPort(1),
  clientAddress: clientUrl,
  protocolAddress: protocolUrl.optional(),
});

const bool = (d: boolean) => z.boolean().default(d);

export const configShape = z.strictObject({
  nodeId: field(idSchema.default('n1'), "This node's id; must be one of `members`."),
  clusterId: field(
    idSchema.default('quorate-local'),
    'Name of the cluster; transports refuse peers that present another.',
  ),
  members: field(
    z
      .preprocess(expandMembers, z.array(memberSchema).min(1, { message: 'must list at least one member' }))
      .default(() => localMembers(1)),
    'Voters of a new cluster: `{id, peerAddress, clientAddress}` each. In env/flags: `local:3`, ' +
      '`n1=host:7001=http://host:8081,…` or a YAML flow list.',
  ),
  groups: field(
    z.number().int().min(1).max(4096).default(1),
    'Raft groups the key space is sharded over (1: one group). Fixed when the cluster is created; ' +
      'the same on every member; TCP transport only (docs/sharding.md).',
  ),
  transport: z
    .strictObject({
      kind: field(z.enum(['tcp', 'ws']).default('tcp'), 'Raft transport between members: `tcp` or `ws`.'),
      listen: field(
        hostPort(0).optional(),
        "`host:port` the transport listens on. Default: this node's `peerAddress`.",
      ),
      clusterSecret: field(
        z.string().min(16, { message: 'must be at least 16 characters' }).optional(),
        'Shared secret peers prove they know before any Raft message is accepted.',
        { secret: true },
      ),
      tls: z
        .strictObject({
          enabled: field(bool(false), 'Mutual TLS between members.'),
          certFile: field(z.string().min(1).optional(), "PEM file of this node's certificate."),
          keyFile: field(z.string().min(1).optional(), "PEM file of this node's private key."),
          caFile: field(z.string().min(1).optional(), 'PEM file of the CA that signed every member.'),
        })
        .prefault({}),
    })
    .prefault({}),
  storage: z
    .strictObject({
      dataDir: field(
        z.string().min(1).optional(),
        'Directory of the Raft log and state. Default: `data/<nodeId>`.',
      ),
      fsync: field(
        bool(true),
        'Make every write durable before acknowledging it. Turn off only for tests: a crash can lose acknowledged writes.',
      ),
      reserveBytes: field(
        int(0, Number.MAX_SAFE_INTEGER).default(64 * MiB),
        'Free space kept on the filesystem of the data directory. Below it the node refuses client writes (`STORAGE_FULL`, HTTP 507), and so does a leader while any member reports it is below; reads, elections and lease expiry go on, and writes resume once space is freed. 0: no check.',
      ),
    })
    .prefault({}),
  raft: z
    .strictObject({
      tickMs: field(int(1, 1000).default(10), 'Milliseconds per logical clock tick.'),
      heartbeatIntervalMs: field(int(1, 60_000).default(50), "Leader's heartbeat interval."),
      electionTimeoutMs: field(
        int(2, 600_000).default(150),
        'Minimum election timeout; each timeout is drawn from (this, 2 × this]. At least 3 heartbeats.',
      ),
      preVote: field(
        bool(true),
        'Pre-vote before raising the term, so a rejoining node cannot disrupt a leader.',
      ),
      checkQuorum: field(
        bool(true),
        'A leader that has not heard from a majority for an election timeout steps down.',
      ),
      leaseReads: field(
        bool(false),
        'Serve linearizable reads on the leader without a heartbeat round while a quorum acknowledged one within its lease (the election timeout less two ticks, shortened by maxClockDriftRatio). Safe only while clocks keep within that drift and do not jump; needs checkQuorum; set it the same on every member. See docs/lease-reads.md.',
      ),
      maxClockDriftRatio: field(
        z.number().min(0).max(0.5).default(0.1),
        "With leaseReads: how far any member's clock may run faster or slower than another's (0.1: ten percent). A larger value shortens the lease.",
      ),
      maxInflightMsgs: field(int(1, 65_536).default(256), 'Append messages in flight to one follower.'),
      maxInflightBytes: field(
        int(0, 4096 * MiB).default(32 * MiB),
        'Bytes of entries in flight to one follower (0: no byte limit, only the message count).',
      ),
      maxEntriesPerMsg: field(int(1, 1_000_000).default(4096), 'Most entries in one append message.'),
      maxMsgBytes: field(int(1024, 256 * MiB).default(MiB), 'Largest append message, in bytes of entries.'),
      maxEntryBytes: field(
        int(1024, 256 * MiB).default(MiB + 64 * 1024),
        'Largest single log entry (a value plus its key and headers).',
      ),
      maxUncommittedBytes: field(
        int(1024, 4096 * MiB).default(64 * MiB),
        'The leader refuses writes while this many bytes are proposed and not committed.',
      ),
      requestTimeoutMs: field(
        int(1, 600_000).default(5000),
        'Deadline of a proposal or read that sets none.',
      ),
      snapshotEntries: field(
        int(1, 100_000_000).default(100_000),
        'Take a snapshot each time this many entries were applied (at points spread over the members, see `snapshotSpread`; a snapshot writes the whole state: with a large state, snapshotting often costs write throughput).',
      ),
      snapshotBytes: field(
        int(0, 1_000_000 * MiB).default(0),
        'Also take a snapshot once this many bytes of entries were applied since the last one (0: by count only).',
      ),
      snapshotSpread: field(
        bool(true),
        "Spread the members' snapshots by count over each interval of `snapshotEntries` (in the order of their ids) instead of all members taking one at about the same index: a snapshot costs a member CPU and disk for a while, and writes need a majority.",
      ),
      snapshotTrailingEntries: field(
        int(0, 100_000_000).default(5000),
        'Entries kept in the log behind a snapshot, so slightly slow followers need no snapshot.',
      ),
    })
    .prefault({}),
  http: z
    .strictObject({
      listen: field(
        hostPort(0).optional(),
        "`host:port` of the HTTP API. Default: the host and port of this node's `clientAddress`.",
      ),
      token: field(
        z.string().min(1).optional(),
        'Bearer token every route except /health/live requires. Unset: no authentication.',
        { secret: true },
      ),
      defaultTimeoutMs: field(int(1, 60_000).default(5000), 'Deadline of a request that sets none.'),
      tls: z
        .strictObject({
          enabled: field(
            bool(false),
            'Serve the HTTP API over TLS (clientAddress then starts with https://).',
          ),
          certFile: field(z.string().min(1).optional(), "PEM file of this node's HTTPS certificate."),
          keyFile: field(z.string().min(1).optional(), 'PEM file of its private key.'),
          caFile: field(
            z.string().min(1).optional(),
            "PEM file of the CA that signed client certificates (and other members' HTTPS certificates, for the status page).",
          ),
          requireClientCert: field(
            bool(false),
            'Refuse TLS connections without a client certificate signed by caFile (probes then need one too).',
          ),
        })
        .prefault({}),
    })
    .prefault({}),
  client: z
    .strictObject({
      listen: field(
        hostPort(0).optional(),
        "`host:port` of the client protocol (binary, pipelined; docs/client-protocol.md). Default: the host and port of this node's `protocolAddress`; neither set: not served.",
      ),
      maxFrameBytes: field(
        int(1024, 1024 * MiB).optional(),
        'Largest request frame accepted. Default: `kv.maxValueBytes` plus 64 KiB.',
      ),
      maxInFlight: field(
        int(1, 1_000_000).default(4096),
        'Requests in flight on one connection, at most; more are answered OVERLOADED.',
      ),
    })
    .prefault({}),
  kv: z
    .strictObject({
      maxValueBytes: field(int(1, 256 * MiB).default(MiB), 'Largest value of a key.'),
      sessionExpiryEntries: field(
        int(1, 1_000_000_000).default(100_000),
        "A client's exactly-once session expires after this many log entries without a write from it.",
      ),
      watchHistoryEvents: field(
        int(1, 100_000_000).default(100_000),
        'Changes kept in memory for watchers resuming from an index (GET /watch?fromIndex=); older ones answer 410 COMPACTED.',
      ),
      watchHistoryBytes: field(
        int(1024, 16 * 1024 * MiB).default(64 * MiB),
        'Bytes of keys and values kept for resuming watchers, at most.',
      ),
    })
    .prefault({}),
  leases: z
    .strictObject({
      minTtlMs: field(int(1, 86_400_000).default(100), 'Shortest TTL a lease may ask for.'),
      maxTtlMs: field(int(1, 86_400_000).default(3_600_000), 'Longest TTL a lease may ask for.'),
      checkIntervalMs: field(
        int(1, 60_000).default(50),
        'How often the leader looks for expired leases; must be shorter than the shortest TTL.',
      ),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      enabled: field(bool(true), 'Serve Prometheus metrics.'),
      listen: field(
        hostPort(0).optional(),
        '`host:port` of a separate metrics listener. Unset: `/metrics` on the HTTP API.',
      ),
      prefix: field(
        z
          .string()
          .regex(/^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/, { message: 'must be a Prometheus metric name prefix' })
          .default('quorate_'),
        'Prefix of every metric name.',
      ),
      processMetrics: field(bool(true), 'Also export the default process metrics (CPU, memory, event loop).'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: field(
        z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        'Least severe level logged.',
      ),
      format: field(z.enum(['json', 'pretty']).default('json'), '`json` lines, or `pretty` for people.'),
    })
    .prefault({}),
});

/** What the schema accepts (every key optional). */
export type ConfigInput = z.input<typeof configShape>;
/** The schema's output, before the defaults that depend on other fields are filled in. */
export type ParsedConfig = z.output<typeof configShape>;
export type { Member } from './members.js';

/** A complete, valid configuration. */
export type Config = ParsedConfig & {
  readonly transport: ParsedConfig['transport'] & { readonly listen: string };
  readonly storage: ParsedConfig['storage'] & { readonly dataDir: string };
  readonly http: ParsedConfig['http'] & { readonly listen: string };
};
