/**
 * Serving the exposition: a request handler to mount on an existing HTTP server (the
 * node's API port), or a small server of its own (a separate metrics port).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** The parts of node:http's request and response the handler uses (so its types need no @types/node). */
export interface MetricsRequest {
  readonly method?: string | undefined;
}
export interface MetricsResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body?: string): unknown;
}

/** Answers GET/HEAD with the registry's exposition; other methods get 405. */
export function metricsHandler(registry: Registry): (req: MetricsRequest, res: MetricsResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed: use GET\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`metrics collection failed: ${(err as Error)?.message ?? String(err)}\n`);
      },
    );
  };
}

export interface MetricsServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: the OS picks. */
  port?: number;
  /** Default `/metrics`. */
  path?: string;
}

export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A server that answers `path` with the exposition and 404 elsewhere. */
export async function startMetricsServer(
  registry: Registry,
  opts: MetricsServerOptions = {},
): Promise<MetricsServer> {
  const path = opts.path ?? '/metrics';
  const handle = metricsHandler(registry);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === path) return handle(req, res);
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`not found: metrics are at ${path}\n`);
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}${path}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
