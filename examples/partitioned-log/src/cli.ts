#!/usr/bin/env node
/**
 * A small command line for the example:
 *
 *     node dist/cli.js create  --quorate <urls> --set logs --brokers b1,b2,b3 --partitions 4 --replication-factor 3
 *     node dist/cli.js produce --quorate <urls> --set logs --partition 0 hello world
 *     node dist/cli.js read    --quorate <urls> --set logs --partition 0 [--from 0]
 *     node dist/cli.js status  --quorate <urls> --set logs
 */
import { parseArgs } from 'node:util';
import { QuorateClient } from '@quorate/client';
import { BrokerError } from './errors.js';
import { LogClient } from './log-client.js';
import { valueText } from './wire.js';

const usage = `usage: cli.js <create|produce|read|status> --quorate <url,url,...> --set <name> [options]
  create   --brokers b1,b2,b3 --partitions N --replication-factor R
  produce  --partition P <record> [<record> ...]
  read     --partition P [--from OFFSET]
  status`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quorate: { type: 'string' },
      set: { type: 'string' },
      brokers: { type: 'string' },
      partitions: { type: 'string' },
      'replication-factor': { type: 'string' },
      partition: { type: 'string' },
      from: { type: 'string' },
    },
  });
  const [command, ...records] = positionals;
  if (!command || !values.quorate || !values.set) {
    console.error(usage);
    return 2;
  }
  const quorate = new QuorateClient({ endpoints: values.quorate.split(',').filter(Boolean) });
  const log = new LogClient({ quorate, set: values.set });
  try {
    switch (command) {
      case 'create': {
        const s = await quorate.createPartitionSet({
          name: values.set,
          members: (values.brokers ?? '').split(',').filter(Boolean),
          partitions: Number(values.partitions ?? 4),
          replicationFactor: Number(values['replication-factor'] ?? 3),
        });
        for (const p of s.partitions)
          console.log(`partition ${p.partition}: replicas ${p.replicas.join(',')}`);
        return 0;
      }
      case 'produce': {
        const p = Number(values.partition ?? 0);
        for (const r of records) {
          const a = await log.produce(p, r);
          console.log(`partition ${p} offset ${a.offset} leader epoch ${a.leaderEpoch}: ${r}`);
        }
        return 0;
      }
      case 'read': {
        const p = Number(values.partition ?? 0);
        const a = await log.read(p, Number(values.from ?? 0));
        for (const e of a.entries) console.log(`${e.offset}\t${e.leaderEpoch}\t${valueText(e)}`);
        console.error(`high watermark ${a.highWatermark}`);
        return 0;
      }
      case 'status': {
        const s = await quorate.getPartitionSet(values.set);
        if (!s) throw new Error(`no partition set ${values.set}`);
        for (const m of s.members) console.log(`member ${m.id}: session ${m.session ?? '-'}`);
        for (const p of s.partitions) {
          console.log(
            `partition ${p.partition}: leader ${p.leader ?? '-'} leader epoch ${p.leaderEpoch} epoch ${p.epoch} eligible ${p.eligible.join(',')} replicas ${p.replicas.join(',')}`,
          );
        }
        return 0;
      }
      default:
        console.error(usage);
        return 2;
    }
  } catch (err) {
    if (err instanceof BrokerError) console.error(`${err.code} (${err.outcome}): ${err.message}`);
    else console.error(err instanceof Error ? err.message : String(err));
    return 1;
  } finally {
    await quorate.close();
  }
}

main().then((code) => process.exit(code));
