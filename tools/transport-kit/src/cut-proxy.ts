/**
 * A TCP relay on 127.0.0.1 whose connections a test can cut at a chosen moment: the link
 * between two transports breaks for real (both sockets are destroyed), while both
 * processes and their listeners stay up, and the next dial goes through again. Works for
 * any transport over TCP (plain, TLS, WebSocket): it relays bytes without reading them.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface CutProxy {
  /** The port to dial instead of the target's. */
  readonly port: number;
  /** Connections relayed so far. */
  readonly accepted: number;
  /** Destroy every connection relayed now (new ones are relayed as before). */
  cut(): number;
  close(): Promise<void>;
}

export interface CutProxyOptions {
  /** Sees every chunk relayed from the dialling side to the target, in order. */
  tap?: (chunk: Buffer, connection: number) => void;
}

export async function cutProxy(targetPort: number, options: CutProxyOptions = {}): Promise<CutProxy> {
  const live = new Set<Socket>();
  let accepted = 0;
  const server = createServer((client) => {
    const id = ++accepted;
    const target = connect({ host: '127.0.0.1', port: targetPort });
    live.add(client);
    live.add(target);
    const end = () => {
      client.destroy();
      target.destroy();
      live.delete(client);
      live.delete(target);
    };
    client.on('error', end).on('close', end);
    target.on('error', end).on('close', end);
    if (options.tap) client.on('data', (chunk: Buffer) => options.tap!(chunk, id));
    client.pipe(target);
    target.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('the cut proxy has no port');
  return {
    port: addr.port,
    get accepted() {
      return accepted;
    },
    cut() {
      const n = live.size / 2;
      for (const s of [...live]) s.destroy();
      live.clear();
      return n;
    },
    close() {
      for (const s of live) s.destroy();
      live.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `address` (host:port or a ws:// URL) with its port replaced. */
export function withPort(address: string, port: number): string {
  const out = address.replace(/:(\d+)(?=\/|$)/, `:${port}`);
  if (out === address) throw new Error(`no port to replace in ${address}`);
  return out;
}

/** The port of `address` (host:port or a ws:// URL). */
export function portOf(address: string): number {
  const m = /:(\d+)(?=\/|$)/.exec(address);
  if (!m) throw new Error(`no port in ${address}`);
  return Number(m[1]);
}
