/**
 * The operation history, in the JSON Lines shape Jepsen-style checkers read: an `invoke`
 * line when an operation starts and an `ok` / `fail` / `info` line when it ends, with
 * `process`, `f`, `key`, `value` and monotonic `time` in nanoseconds.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

export interface HistoryEvent {
  process: number;
  type: 'invoke' | 'ok' | 'fail' | 'info';
  f: string;
  key: string;
  /**
   * put: the value; get: the value read (null when absent); cas: [expected, new]; leases:
   * the holder; txn: the transaction when invoked, `{succeeded, reads}` when `ok`.
   */
  value: string | null | [string | null, string | null] | TxnValue;
  time: bigint;
}

/** A transaction as the checker reads it (`@quorate/checker`'s `TxnSpec` / `TxnOutcome`). */
export type TxnValue =
  | {
      compare: ({ key: string; value: string } | { key: string; exists: boolean })[];
      success: { op: 'put' | 'get' | 'delete'; key: string; value?: string }[];
      failure: { op: 'put' | 'get' | 'delete'; key: string; value?: string }[];
    }
  | { succeeded: boolean; reads: (string | null)[] };

export interface HistorySink {
  invoke(e: Omit<HistoryEvent, 'type'>): void;
  complete(e: HistoryEvent): void;
  close(): Promise<void>;
}

function line(e: HistoryEvent): string {
  return `{"process":${e.process},"type":"${e.type}","f":${JSON.stringify(e.f)},"key":${JSON.stringify(e.key)},"value":${JSON.stringify(e.value)},"time":${e.time}}\n`;
}

/** Writes events to a file as they happen (and keeps them in memory for the checker). */
export class HistoryFile implements HistorySink {
  private readonly out: WriteStream | null;
  readonly events: HistoryEvent[] = [];

  constructor(
    path: string | null,
    private readonly keep: boolean,
  ) {
    this.out = path ? createWriteStream(path) : null;
  }

  invoke(e: Omit<HistoryEvent, 'type'>): void {
    this.push({ ...e, type: 'invoke' });
  }

  complete(e: HistoryEvent): void {
    this.push(e);
  }

  private push(e: HistoryEvent): void {
    if (this.keep) this.events.push(e);
    this.out?.write(line(e));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.out) return resolve();
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }
}
