/**
 * Polls every other member's `/health` once a second, so that any node can show the
 * whole cluster (`/cluster/status`, the dashboard) even when it is not the leader.
 */
import type { NodeId } from '@quorate/raft';

export interface PeerHealth {
  readonly state: string;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly leaderId: string | null;
  readonly healthy: boolean;
  /** When this view was taken (ms since epoch). */
  readonly at: number;
}

export class PeerMonitor {
  private readonly seen = new Map<NodeId, PeerHealth>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly peers: () => readonly { id: NodeId; clientAddress: string }[],
    private readonly token: string | null,
    private readonly intervalMs = 1000,
  ) {}

  get(id: NodeId): PeerHealth | undefined {
    return this.seen.get(id);
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
    await Promise.all(
      this.peers().map(async (p) => {
        if (!p.clientAddress.startsWith('http')) return;
        try {
          const res = await fetch(`${p.clientAddress}/health`, {
            signal: AbortSignal.timeout(Math.min(800, this.intervalMs)),
            headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
          });
          const h = (await res.json()) as Record<string, unknown>;
          this.seen.set(p.id, {
            state: String(h.state),
            term: Number(h.term),
            commitIndex: Number(h.commitIndex),
            appliedIndex: Number(h.appliedIndex),
            leaderId: typeof h.leaderId === 'string' ? h.leaderId : null,
            healthy: res.ok,
            at: Date.now(),
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
          });
        }
      }),
    );
  }
}
