/**
 * A broker: an HTTP server for producers, consumers and the other brokers, one
 * `PartitionReplica` per partition it is a replica of, and a `PartitionMember` that keeps
 * its session with quorate and says which partitions it leads.
 *
 * | route | what |
 * |---|---|
 * | `POST /produce/<p>` (header `x-leader-epoch` optional) | leader: append, answer `{partition, offset, leaderEpoch}` once acknowledged |
 * | `GET /fetch/<p>?from&leaderEpoch&lastLeaderEpoch&replica&maxWaitMs` | leader: a follower copies from `from` |
 * | `GET /read/<p>?from&max` | acknowledged entries (any replica, up to what it knows is acknowledged) |
 * | `GET /log/<p>?from&max` | everything this replica holds, acknowledged or not (inspection) |
 * | `GET /status` | this broker's view of each partition |
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PartitionMember, type PartitionMemberEvent, QuorateClient } from '@quorate/client';
import { Directory } from './directory.js';
import { BrokerError } from './errors.js';
import { type FetchQuery, PartitionReplica } from './replica.js';

export interface BrokerOptions {
  /** This broker's member id in the partition set. */
  id: string;
  /** The partition set (created beforehand, listing this broker among its members). */
  set: string;
  /** quorate members' HTTP addresses. */
  quorate: string[];
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** The address other brokers and clients reach this one at; default `http://<host>:<port>`. */
  advertise?: string;
  /** quorate session TTL. Default 3000 ms. */
  sessionTtlMs?: number;
  /** A follower not caught up for this long leaves the eligible set. Default 2000 ms. */
  maxLagMs?: number;
  /** How long a produce waits for its acknowledgement. Default 5000 ms. */
  ackTimeoutMs?: number;
  /** quorate bearer token, if the cluster requires one. */
  token?: string;
  /**
   * For tests only, unsafe: go on acting as leader after the member says a leadership
   * ended (its `lost` events and aborted signals are ignored), so that only the data
   * plane can stop a deposed leader: its followers' leader epochs, and producers'.
   */
  ignoreLostLeadership?: boolean;
  /** Where log lines go; default stderr. */
  say?: (line: string) => void;
}

const MAX_RECORD_BYTES = 1024 * 1024;

export class Broker {
  readonly url: string;
  private readonly replicas = new Map<number, PartitionReplica>();
  private ticker: ReturnType<typeof setInterval> | null = null;
  private stopping = false;
  private ignoreLost = false;

  private constructor(
    readonly id: string,
    readonly set: string,
    private readonly server: Server,
    url: string,
    private readonly quorate: QuorateClient,
    private readonly directory: Directory,
    private member: PartitionMember | null,
    private readonly say: (line: string) => void,
  ) {
    this.url = url;
  }

  static async start(o: BrokerOptions): Promise<Broker> {
    const say =
      o.say ?? ((line: string) => process.stderr.write(`${new Date().toISOString()} ${o.id} ${line}\n`));
    const quorate = new QuorateClient({
      endpoints: o.quorate,
      clientId: `broker-${o.set}-${o.id}-${process.pid}`,
      ...(o.token ? { token: o.token } : {}),
    });
    const directory = new Directory(quorate, o.set);
    const server = createServer();
    const host = o.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 0, host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const url = o.advertise ?? `http://${host}:${port}`;
    const b = new Broker(o.id, o.set, server, url, quorate, directory, null, say);
    server.on('request', (req, res) => void b.handle(req, res));
    try {
      await b.join(o);
    } catch (err) {
      await b.stop();
      throw err;
    }
    return b;
  }

  private async join(o: BrokerOptions): Promise<void> {
    const ttlMs = o.sessionTtlMs ?? 3000;
    this.ignoreLost = o.ignoreLostLeadership ?? false;
    if (this.ignoreLost) this.say('UNSAFE: ignoring the member when it says a leadership ended (for tests)');
    const maxLagMs = o.maxLagMs ?? 2000;
    // The set must exist; wait for it a while (it may be created just after the brokers start).
    const deadline = performance.now() + 60_000;
    let set = await this.quorate.getPartitionSet(o.set).catch(() => null);
    while (!set) {
      if (performance.now() > deadline) throw new Error(`partition set ${o.set} not found`);
      await new Promise((r) => setTimeout(r, 500));
      set = await this.quorate.getPartitionSet(o.set).catch(() => null);
    }
    if (!set.members.some((m) => m.id === this.id)) {
      throw new Error(`${this.id} is not a member of ${o.set} (${set.members.map((m) => m.id).join(', ')})`);
    }
    await this.directory.register(this.id, this.url);
    const member = new PartitionMember({
      cluster: this.quorate,
      set: o.set,
      member: this.id,
      ttlMs,
      keepAliveEveryMs: Math.floor(ttlMs / 4),
    });
    this.member = member;
    for (const p of set.partitions) {
      if (!p.replicas.includes(this.id)) continue;
      this.replicas.set(
        p.partition,
        new PartitionReplica({
          self: this.id,
          partition: p.partition,
          replicas: p.replicas,
          directory: this.directory,
          maxLagMs,
          ackTimeoutMs: o.ackTimeoutMs ?? 5000,
          maxWaitMs: 500,
          maxBatch: 1000,
          setEligible: (eligible) => member.setEligible(p.partition, eligible),
          // The member compares its deadline with the clock on every read: right for a
          // process that was frozen and has not run its timers yet.
          stillLeads: (leaderEpoch) => this.ignoreLost || member.leaderEpochOf(p.partition) === leaderEpoch,
          say: this.say,
        }),
      );
    }
    member.on((e) => this.onMemberEvent(e));
    for (const r of this.replicas.values()) r.follow();
    member.start();
    this.ticker = setInterval(
      () => {
        for (const r of this.replicas.values()) r.tick();
      },
      Math.max(50, Math.floor(maxLagMs / 8)),
    );
    this.say(
      `broker ${this.id} of ${o.set} at ${this.url}: replica of ${[...this.replicas.keys()].join(', ')}`,
    );
  }

  private onMemberEvent(e: PartitionMemberEvent): void {
    switch (e.type) {
      case 'leading':
        this.say(
          `member: leading ${e.partition} at leader epoch ${e.leaderEpoch} (epoch ${e.epoch}, eligible ${e.eligible.join(',')})`,
        );
        this.replicas.get(e.partition)?.lead(e, this.ignoreLost ? new AbortController().signal : e.signal);
        break;
      case 'epoch':
        // The same leadership, its eligible set changed (by this broker or by quorate).
        this.say(
          `member: ${e.partition} at epoch ${e.epoch}, eligible ${e.eligible.join(',')} (leader epoch ${e.leaderEpoch})`,
        );
        this.replicas.get(e.partition)?.epochChanged(e.leaderEpoch, e.epoch, e.eligible);
        break;
      case 'lost':
        this.say(
          `member: lost ${e.partition} at leader epoch ${e.leaderEpoch} (${e.reason})${this.ignoreLost ? ': ignored' : ''}`,
        );
        if (!this.ignoreLost) this.replicas.get(e.partition)?.lost(e.leaderEpoch);
        break;
      case 'joined':
        this.say(`member: joined with session ${e.session}`);
        break;
      case 'session-lost':
        this.say('member: session lost');
        break;
      case 'error':
        this.say(`member: ${e.during}: ${e.error.message}`);
        break;
    }
  }

  /** Leave the set (what this broker leads is handed on at once), stop serving. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.member?.stop().catch(() => {});
    for (const r of this.replicas.values()) r.stop();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    await this.quorate.close();
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://broker');
      const [, route, part] = url.pathname.split('/');
      if (route === 'status' && req.method === 'GET') {
        return send(res, 200, this.status());
      }
      const replica = this.replicaOf(part);
      const int = (name: string, dflt?: number): number => {
        const v = url.searchParams.get(name);
        if (v === null && dflt !== undefined) return dflt;
        const n = Number(v);
        if (v === null || !Number.isInteger(n) || n < 0) {
          throw new BrokerError('BAD_REQUEST', 400, `?${name} must be a non-negative integer`);
        }
        return n;
      };
      if (route === 'produce' && req.method === 'POST') {
        const h = req.headers['x-leader-epoch'];
        const leaderEpoch = typeof h === 'string' && h !== '' ? Number(h) : undefined;
        if (leaderEpoch !== undefined && !Number.isInteger(leaderEpoch)) {
          throw new BrokerError('BAD_REQUEST', 400, 'x-leader-epoch must be an integer');
        }
        const value = await readBody(req);
        return send(res, 200, await replica.produce(value, leaderEpoch));
      }
      if (route === 'fetch' && req.method === 'GET') {
        const replicaId = url.searchParams.get('replica');
        if (!replicaId) throw new BrokerError('BAD_REQUEST', 400, '?replica is required');
        const q: FetchQuery = {
          from: int('from'),
          leaderEpoch: int('leaderEpoch'),
          lastLeaderEpoch: int('lastLeaderEpoch'),
          replica: replicaId,
          maxWaitMs: int('maxWaitMs', 500),
        };
        const gone = new AbortController();
        res.on('close', () => gone.abort());
        return send(res, 200, await replica.fetch(q, gone.signal));
      }
      if (route === 'read' && req.method === 'GET') {
        return send(res, 200, replica.read(int('from', 0), int('max', 1000)));
      }
      if (route === 'log' && req.method === 'GET') {
        return send(res, 200, replica.dump(int('from', 0), int('max', 1_000_000)));
      }
      throw new BrokerError('BAD_REQUEST', 404, `no route ${req.method} ${url.pathname}`);
    } catch (err) {
      if (err instanceof BrokerError) return send(res, err.status, err.toJSON());
      this.say(`${req.method} ${req.url}: ${String(err)}`);
      return send(res, 500, { code: 'INTERNAL', message: String(err), outcome: 'unknown' });
    }
  }

  private replicaOf(part: string | undefined): PartitionReplica {
    const p = Number(part);
    if (part === undefined || part === '' || !Number.isInteger(p)) {
      throw new BrokerError('BAD_REQUEST', 404, 'no such route: use /<route>/<partition>');
    }
    if (this.stopping) throw new BrokerError('SHUTTING_DOWN', 503, 'the broker is stopping');
    const r = this.replicas.get(p);
    if (!r) {
      throw new BrokerError(
        'NOT_A_REPLICA',
        404,
        `${this.id} is not a replica of partition ${p} of ${this.set}`,
      );
    }
    return r;
  }

  status(): Record<string, unknown> {
    return {
      id: this.id,
      set: this.set,
      url: this.url,
      session: this.member?.sessionId ?? null,
      partitions: [...this.replicas.values()].map((r) => r.status()),
    };
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_RECORD_BYTES)
      throw new BrokerError('BAD_REQUEST', 413, `a record is at most ${MAX_RECORD_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
