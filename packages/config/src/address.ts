/**
 * Parsing of the two address forms the configuration uses: `host:port` for listeners and
 * peers, `http(s)://host:port` for the client-facing address that not-leader answers
 * point clients to. Pure; the schema turns the results into issues.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type AddressResult =
  | { readonly ok: true; readonly value: HostPort }
  | { readonly ok: false; readonly rule: 'format' | 'port-range'; readonly message: string };

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$/;

/** `127.0.0.1:7001`, `node-1.internal:7001`, `[::1]:7001`. */
export function parseHostPort(s: string, minPort: 0 | 1): AddressResult {
  const i = s.lastIndexOf(':');
  if (i <= 0) {
    return { ok: false, rule: 'format', message: `"${s}" is not host:port (for example 127.0.0.1:7001)` };
  }
  const host = s.slice(0, i);
  const portText = s.slice(i + 1);
  if (!HOST.test(host)) {
    return { ok: false, rule: 'format', message: `"${host}" in "${s}" is not a host name or IP address` };
  }
  return checkPort(host, portText, s, minPort);
}

/** `http://127.0.0.1:8081` (a path or query is not allowed: it is a base address). */
export function parseClientUrl(s: string): AddressResult {
  const m = /^(https?):\/\/([^/:?#[\]]+|\[[0-9A-Fa-f:.]+\])(?::([^/?#]*))?\/?$/.exec(s);
  if (!m) {
    return {
      ok: false,
      rule: 'format',
      message: `"${s}" is not an http(s)://host:port address (for example http://127.0.0.1:8081)`,
    };
  }
  const host = m[2]!;
  if (!HOST.test(host)) {
    return { ok: false, rule: 'format', message: `"${host}" in "${s}" is not a host name or IP address` };
  }
  if (m[3] === undefined) return { ok: true, value: { host, port: m[1] === 'https' ? 443 : 80 } };
  return checkPort(host, m[3], s, 1);
}

/** `quorate://127.0.0.1:9081` or `quorates://…` (TLS): a member's client-protocol address. */
export function parseProtocolUrl(s: string): AddressResult {
  const m = /^(quorates?):\/\/([^/:?#[\]]+|\[[0-9A-Fa-f:.]+\]):([^/?#]*)\/?$/.exec(s);
  if (!m) {
    return {
      ok: false,
      rule: 'format',
      message: `"${s}" is not a quorate://host:port address (for example quorate://127.0.0.1:9081)`,
    };
  }
  const host = m[2]!;
  if (!HOST.test(host)) {
    return { ok: false, rule: 'format', message: `"${host}" in "${s}" is not a host name or IP address` };
  }
  return checkPort(host, m[3]!, s, 1);
}

function checkPort(host: string, portText: string, whole: string, minPort: 0 | 1): AddressResult {
  if (!/^\d{1,10}$/.test(portText)) {
    return { ok: false, rule: 'format', message: `the port of "${whole}" is not a number` };
  }
  const port = Number(portText);
  if (port < minPort || port > 65535) {
    return {
      ok: false,
      rule: 'port-range',
      message: `port ${port} in "${whole}" is out of range ${minPort}–65535`,
    };
  }
  return { ok: true, value: { host, port } };
}

/** The `host:port` of a client URL, for listening on it. */
export function listenAddressOf(clientUrl: string): string | null {
  const r = /^quorates?:/.test(clientUrl) ? parseProtocolUrl(clientUrl) : parseClientUrl(clientUrl);
  return r.ok ? `${r.value.host}:${r.value.port}` : null;
}
