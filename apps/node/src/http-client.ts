/**
 * HTTP(S) requests from the CLI's admin commands and backups, over `node:http`/`node:https`
 * so that a CA and a client certificate can be given (as `@quorate/client` takes them).
 */
import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface HttpCall {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  tls?: HttpTls;
}

/** The response, its body still to be read (a stream). */
export function open(url: string, o: HttpCall): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith('https:');
    const req = (secure ? httpsRequest : httpRequest)(
      url,
      {
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        timeout: o.timeoutMs,
        ...(secure && o.tls ? { ca: o.tls.ca, cert: o.tls.cert, key: o.tls.key } : {}),
      },
      resolve,
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The whole response as text. */
export async function call(url: string, o: HttpCall): Promise<{ status: number; text: string }> {
  const res = await open(url, o);
  let text = '';
  res.setEncoding('utf8');
  for await (const chunk of res) text += chunk as string;
  return { status: res.statusCode ?? 0, text };
}
