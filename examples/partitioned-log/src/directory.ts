/**
 * Where things are, as quorate knows it: who leads a partition at which leader epoch
 * (`partitionLeader`, a linearizable read), and each broker's HTTP address, which every
 * broker writes under `brokers/<set>/<id>` in quorate's key-value store when it starts
 * (a broker started on `--port 0` gets a new address each time).
 */
import type { PartitionState, QuorateClient } from '@quorate/client';

export interface Registration {
  id: string;
  url: string;
  pid: number;
  startedAt: string;
}

export function registryKey(set: string, id: string): string {
  return `brokers/${set}/${id}`;
}

export interface Located {
  state: PartitionState;
  /** The leader's broker address, or null (leaderless, or not registered yet). */
  url: string | null;
}

export class Directory {
  private readonly urls = new Map<string, string>();

  constructor(
    readonly quorate: QuorateClient,
    readonly set: string,
    private readonly timeoutMs = 3000,
  ) {}

  async register(id: string, url: string): Promise<void> {
    const r: Registration = { id, url, pid: process.pid, startedAt: new Date().toISOString() };
    await this.quorate.put(registryKey(this.set, id), JSON.stringify(r), { timeoutMs: 10_000 });
    this.urls.set(id, url);
  }

  /** A broker's address (cached until `forget`). */
  async address(id: string): Promise<string | null> {
    const known = this.urls.get(id);
    if (known) return known;
    const v = await this.quorate.get(registryKey(this.set, id), { timeoutMs: this.timeoutMs });
    if (!v) return null;
    const url = (JSON.parse(v.text()) as Registration).url;
    this.urls.set(id, url);
    return url;
  }

  /** After a failed request: the broker may have restarted elsewhere. */
  forget(id: string): void {
    this.urls.delete(id);
  }

  async leaderOf(partition: number): Promise<PartitionState> {
    return this.quorate.partitionLeader(this.set, partition, { timeoutMs: this.timeoutMs });
  }

  async locate(partition: number): Promise<Located> {
    const state = await this.leaderOf(partition);
    return { state, url: state.leader ? await this.address(state.leader) : null };
  }
}
