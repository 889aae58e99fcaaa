/**
 * Per-peer liveness for the whole host, in place of every group's heartbeats: a peer is
 * live while something (an `alive` message, or any group's message) arrived from it within
 * the timeout. Quiesced groups rely on it: their followers do not time out on a silent
 * leader; the host wakes them when the leader's process is down or restarted. Time comes
 * in as an argument, so this is tested and simulated without clocks.
 */
import type { NodeId } from '@quorate/raft';

export type LivenessChange =
  | { readonly peer: NodeId; readonly kind: 'down' }
  | { readonly peer: NodeId; readonly kind: 'up' }
  /** The peer's process restarted (a new incarnation): whatever it led, it leads no more. */
  | { readonly peer: NodeId; readonly kind: 'restarted' };

interface PeerState {
  heardAt: number;
  live: boolean;
  incarnation: number | null;
}

export class PeerLiveness {
  private readonly peers = new Map<NodeId, PeerState>();

  constructor(private readonly timeoutMs: number) {}

  /** Start watching `peer`, as heard from at `now` (a peer is presumed live until it is silent). */
  watch(peer: NodeId, now: number): void {
    if (!this.peers.has(peer)) this.peers.set(peer, { heardAt: now, live: true, incarnation: null });
  }

  /** Every peer watched. */
  get watched(): IterableIterator<NodeId> {
    return this.peers.keys();
  }

  isLive(peer: NodeId): boolean {
    return this.peers.get(peer)?.live ?? true;
  }

  /** Something arrived from `peer` at `now` (with its incarnation when it says). */
  heard(peer: NodeId, now: number, incarnation?: number): LivenessChange | null {
    let p = this.peers.get(peer);
    if (!p) {
      p = { heardAt: now, live: true, incarnation: null };
      this.peers.set(peer, p);
    }
    p.heardAt = now;
    if (incarnation !== undefined && p.incarnation !== incarnation) {
      const before = p.incarnation;
      p.incarnation = incarnation;
      if (before !== null) {
        p.live = true;
        return { peer, kind: 'restarted' };
      }
    }
    if (!p.live) {
      p.live = true;
      return { peer, kind: 'up' };
    }
    return null;
  }

  /** Peers silent for longer than the timeout at `now` that were live until now. */
  sweep(now: number): LivenessChange[] {
    const out: LivenessChange[] = [];
    for (const [peer, p] of this.peers) {
      if (p.live && now - p.heardAt > this.timeoutMs) {
        p.live = false;
        out.push({ peer, kind: 'down' });
      }
    }
    return out;
  }
}
