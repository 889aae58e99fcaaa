import type { NodeId } from '@quorate/raft';
import type { NetworkTransport, NetworkTransportOptions, StreamLayer } from '@quorate/transport-engine';

/** TLS material for one side of a test connection (PEM strings, so it crosses process boundaries). */
export interface TestTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
  /** Listener side: demand client certificates. */
  readonly requireClientCert: boolean;
}

/** Everything needed to build one member's transport, in a form that can be sent to a child process. */
export interface MemberConfig {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly secret: string;
  readonly peers: Readonly<Record<NodeId, string>>;
  /** 0 lets the OS choose. */
  readonly port: number;
  readonly tls?: TestTls;
  readonly options?: Partial<
    Omit<NetworkTransportOptions, 'id' | 'clusterId' | 'secret' | 'peers' | 'logger' | 'random'>
  >;
  /** Keep the transport's warnings (tests silence them by default). */
  readonly verbose?: boolean;
}

/** How a transport package plugs into the shared test tooling. */
export interface TransportKit {
  readonly name: string;
  /** Build a member's transport (not yet listening). */
  create(config: MemberConfig): NetworkTransport;
  /** A bare stream layer for dialling, with client-side TLS when given: what intruders and fuzzers use. */
  dialer(tls?: TestTls): StreamLayer;
  /** The script a member process runs: it calls `runMemberProcess(kit.create)`. */
  readonly memberScript: string;
}

/** Node flags for child processes that run TypeScript sources of this workspace. */
export const childExecArgv = ['--import', 'tsx', '--conditions=source', '--expose-gc'];
