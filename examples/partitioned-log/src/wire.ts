/**
 * The broker's HTTP answers, as JSON. Record values travel base64-encoded: this is an
 * example, readable with curl, not a wire format to copy.
 */
import type { Entry } from './log.js';

export interface WireEntry {
  offset: number;
  /** The leader epoch it was appended at. */
  leaderEpoch: number;
  /** base64 */
  value: string;
}

/** `GET /fetch/<p>`: entries from `from`, or where the follower must truncate to first. */
export type FetchAnswer =
  | {
      type: 'entries';
      /** The leader's leader epoch: a follower copies only from a leader at least as new as it knows. */
      leaderEpoch: number;
      highWatermark: number;
      entries: WireEntry[];
    }
  | { type: 'truncate'; leaderEpoch: number; truncateTo: number };

/** `POST /produce/<p>`: the record is acknowledged (held by every eligible replica, two or more). */
export interface ProduceAnswer {
  partition: number;
  offset: number;
  /** The leader epoch it was appended at. */
  leaderEpoch: number;
}

/** `GET /read/<p>` (acknowledged entries only) and `GET /log/<p>` (everything held, for inspection). */
export interface ReadAnswer {
  partition: number;
  highWatermark: number;
  /** The end of this replica's log (`/log` only shows entries beyond the high watermark). */
  end: number;
  entries: WireEntry[];
}

export function toWire(e: Entry): WireEntry {
  return { offset: e.offset, leaderEpoch: e.leaderEpoch, value: Buffer.from(e.value).toString('base64') };
}

export function fromWire(e: WireEntry): Entry {
  return {
    offset: e.offset,
    leaderEpoch: e.leaderEpoch,
    value: new Uint8Array(Buffer.from(e.value, 'base64')),
  };
}

/** The text of a record (the example's producers write UTF-8). */
export function valueText(e: WireEntry): string {
  return Buffer.from(e.value, 'base64').toString('utf8');
}
