/**
 * Polls every other member's `/health` once a second, so that any node can show the
 * whole cluster (`/cluster/status`, the dashboard) even when it is not the leader.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { NodeId } from '@quorate/raft';

/** What this node presents to other members' HTTPS APIs: their CA, and its own certificate. */
export interface PeerTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** GET a JSON document, over HTTP or HTTPS (with `tls`), within `timeoutMs`. */
export function getJson(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  tls?: PeerTls,
): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith('https:');
    const req = (secure ? httpsRequest : httpRequest)(
      url,
      {
        method: 'GET',
        headers,
        timeout: timeoutMs,
        ...(secure && tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ ok: (res.statusCode ?? 500) < 400, body: JSON.parse(text) as Record<string, unknown> });
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface PeerHealth {
  readonly state: string;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly leaderId: string | null;
  readonly healthy: boolean;
  /** When this view was taken (ms since epoch). */
  readonly at: number;
  /** The member reported its data directory below its free-space reserve. */
  readonly diskFull: boolean;
  /** When it last reported that (monotonic ms, `performance.now()`); kept while it is unreachable. */
  readonly diskFullSeenAt: number;
}

export class PeerMonitor {
  private readonly seen = new Map<NodeId, PeerHealth>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly peers: () => readonly { id: NodeId; clientAddress: string }[],
    private readonly token: string | null,
    private readonly intervalMs = 1000,
    private readonly tls?: PeerTls,
  ) {}

  get(id: NodeId): PeerHealth | undefined {
    return this.seen.get(id);
  }

  /**
   * A member that reported its disk full within the last `holdMs`, or null. Cheap: it is
   * asked on every write, and reads only what the polls recorded.
   */
  reportingFull(holdMs: number): NodeId | null {
    const now = performance.now();
    for (const [id, h] of this.seen) if (h.diskFull && now - h.diskFullSeenAt < holdMs) return id;
    return null;
  }

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async poll(): Promise<void> {
    const current = this.peers();
    // Members removed since the last poll are forgotten.
    for (const id of this.seen.keys()) if (!current.some((p) => p.id === id)) this.seen.delete(id);
    await Promise.all(
      current.map(async (p) => {
        if (!p.clientAddress.startsWith('http')) return;
        try {
          const res = await getJson(
            `${p.clientAddress}/health`,
            this.token ? { authorization: `Bearer ${this.token}` } : {},
            Math.min(800, this.intervalMs),
            this.tls,
          );
          const h = res.body;
          this.seen.set(p.id, {
            state: String(h.state),
            term: Number(h.term),
            commitIndex: Number(h.commitIndex),
            appliedIndex: Number(h.appliedIndex),
            leaderId: typeof h.leaderId === 'string' ? h.leaderId : null,
            healthy: res.ok,
            at: Date.now(),
            diskFull: h.diskFull === true,
            diskFullSeenAt: h.diskFull === true ? performance.now() : 0,
          });
        } catch {
          const prev = this.seen.get(p.id);
          this.seen.set(p.id, {
            state: 'unreachable',
            term: prev?.term ?? 0,
            commitIndex: prev?.commitIndex ?? 0,
            appliedIndex: prev?.appliedIndex ?? 0,
            leaderId: null,
            healthy: false,
            at: Date.now(),
            diskFull: prev?.diskFull ?? false,
            diskFullSeenAt: prev?.diskFullSeenAt ?? 0,
          });
        }
      }),
    );
  }
}
