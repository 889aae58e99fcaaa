#!/usr/bin/env node
/**
 * The broker process:
 *
 *     node examples/partitioned-log/dist/broker.js --id b1 --set logs \
 *       --quorate http://127.0.0.1:8080,http://127.0.0.1:8081 [--port 0]
 *
 * Prints one JSON line `{"ready":true,"id","url"}` on stdout once it has registered and
 * joined; logs go to stderr. SIGTERM or SIGINT: leave the set (its partitions are handed
 * on at once) and exit.
 */
import { parseArgs } from 'node:util';
import { Broker } from './server.js';

const usage = `usage: broker --id <member> --set <partition set> --quorate <url,url,...>
  [--host 127.0.0.1] [--port 0] [--advertise <url>]
  [--session-ttl-ms 3000] [--max-lag-ms 2000] [--ack-timeout-ms 5000]
  [--stop-with-stdin]  (exit when stdin closes: for a parent that pipes it)
  [--test-ignore-lost-leadership]  (unsafe, for tests: only the data plane fences this broker)
  (QUORATE_TOKEN: the cluster's bearer token, if it needs one)`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer (got ${v})`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      id: { type: 'string' },
      set: { type: 'string' },
      quorate: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      advertise: { type: 'string' },
      'session-ttl-ms': { type: 'string' },
      'max-lag-ms': { type: 'string' },
      'ack-timeout-ms': { type: 'string' },
      'test-ignore-lost-leadership': { type: 'boolean' },
      'stop-with-stdin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (!values.id || !values.set || !values.quorate)
    throw new Error(`--id, --set and --quorate are required\n${usage}`);
  const optional = {
    host: values.host,
    port: int(values.port, 'port'),
    advertise: values.advertise,
    sessionTtlMs: int(values['session-ttl-ms'], 'session-ttl-ms'),
    maxLagMs: int(values['max-lag-ms'], 'max-lag-ms'),
    ackTimeoutMs: int(values['ack-timeout-ms'], 'ack-timeout-ms'),
    token: process.env.QUORATE_TOKEN,
    ignoreLostLeadership: values['test-ignore-lost-leadership'],
  };
  const broker = await Broker.start({
    id: values.id,
    set: values.set,
    quorate: values.quorate.split(',').filter(Boolean),
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Leaving takes a round trip to quorate; without one (quorate down), the session lapses instead.
    setTimeout(() => process.exit(0), 10_000).unref();
    void broker.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (values['stop-with-stdin']) {
    // Started by a test or a supervisor through a pipe: if it goes away, so does this broker.
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.resume();
  }
  console.log(JSON.stringify({ ready: true, id: broker.id, url: broker.url }));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
