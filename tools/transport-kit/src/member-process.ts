/**
 * A transport member in its own process: the child runs `runMemberProcess(create)`, the
 * parent drives it through `MemberProcess`, which looks like any other conformance member.
 */
import type { Message, NodeId } from '@quorate/raft';
import type { HarnessMember } from '@quorate/raft/testing';
import type { NetworkTransport, TransportStats } from '@quorate/transport-engine';
import type { MemberConfig } from './config.js';
import { ChildHandle, serveParent, settledHeap } from './process.js';

/** Child side. The first request carries the config; the transport listens and reports its address. */
export function runMemberProcess(create: (config: MemberConfig) => NetworkTransport): void {
  let transport: NetworkTransport | null = null;
  serveParent(async (m) => {
    switch (m.t) {
      case 'listen': {
        transport = create(m.config as MemberConfig);
        return { address: await transport.listen() };
      }
      case 'peers':
        transport!.setPeers(m.peers as Record<NodeId, string>);
        return;
      case 'start':
        await transport!.start({
          onMessage: (msg) => process.send!({ t: 'message', msg }),
          onUnreachable: (peer) => process.send!({ t: 'unreachable', peer }),
        });
        return;
      case 'send':
        transport!.send(m.msg as Message);
        return;
      case 'stats':
        return { stats: transport!.stats(), heap: settledHeap() };
      case 'close':
        await transport?.close();
        return;
      default:
        throw new Error(`unknown request ${m.t}`);
    }
  });
}

/** Parent side: one incarnation of a member process. */
export class MemberProcess implements HarnessMember {
  readonly received: Message[] = [];
  readonly unreachable: NodeId[] = [];
  address = '';
  private readonly child: ChildHandle;

  private constructor(
    readonly id: NodeId,
    script: string,
  ) {
    this.child = new ChildHandle(script);
    this.child.on((m) => {
      if (m.t === 'message') this.received.push(m.msg as Message);
      else if (m.t === 'unreachable') this.unreachable.push(m.peer as NodeId);
    });
  }

  /** Spawn, build the transport from `config` and listen. */
  static async spawn(script: string, config: MemberConfig): Promise<MemberProcess> {
    const p = new MemberProcess(config.id, script);
    try {
      p.address = String((await p.child.request({ t: 'listen', config })).address);
    } catch (err) {
      await p.child.kill();
      throw err;
    }
    return p;
  }

  async setPeers(peers: Record<NodeId, string>): Promise<void> {
    await this.child.request({ t: 'peers', peers });
  }

  async start(): Promise<void> {
    await this.child.request({ t: 'start' });
  }

  send(msg: Message): void {
    this.child.post({ t: 'send', msg });
  }

  async stats(): Promise<{ stats: TransportStats; heap: number }> {
    const r = await this.child.request({ t: 'stats' });
    return { stats: r.stats as TransportStats, heap: r.heap as number };
  }

  pause(): void {
    this.child.signal('SIGSTOP');
  }

  resume(): void {
    this.child.signal('SIGCONT');
  }

  kill(): Promise<void> {
    return this.child.kill();
  }
}
