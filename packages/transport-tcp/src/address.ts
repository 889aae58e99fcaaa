import { isIPv6 } from 'node:net';
import { TransportConfigError } from '@quorate/codec';

/** `host:port` or `[v6]:port` → parts; throws `TransportConfigError` on anything else. */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new TransportConfigError([
      `${JSON.stringify(address)} is not a host:port address (use [::1]:7001 for IPv6)`,
    ]);
  }
  return { host: (m[1] ?? m[2])!, port };
}

export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
