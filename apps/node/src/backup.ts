/**
 * Backups of the replicated state, and restoring one as the first state of a new cluster.
 *
 * A backup file:
 *
 *   "QUORATE-BACKUP\n"                      15 bytes of magic
 *   u32 length, header JSON                  { format, clusterId, nodeId, index, term, createdAt, stateHash }
 *   (u32 length, chunk)*                     the state machine's snapshot, as the node streams it
 *   u32 0                                    end of chunks
 *   SHA-256 of everything above              32 bytes
 *
 * A member writes it (`GET /admin/snapshot`) after a linearizable read barrier, from a
 * consistent view of its state at `index`; `quorate snapshot save` stores it (checked
 * before it is renamed into place) and `quorate snapshot restore` checks it again, then
 * seeds one member's empty data directory of a new cluster with it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import type { SnapshotMeta } from '@quorate/raft';
import { LmdbStorage } from '@quorate/storage-lmdb';
import { type HttpTls, open } from './http-client.js';
import { QuorateMachine } from './state/machine.js';

const MAGIC = Buffer.from('QUORATE-BACKUP\n');
export const BACKUP_FORMAT = 1;

export interface BackupHeader {
  readonly format: number;
  readonly clusterId: string;
  readonly nodeId: string;
  /** The log index the state is as of. */
  readonly index: number;
  readonly term: number;
  readonly createdAt: string;
  /** `GET /admin/state-hash` of the state in this backup. */
  readonly stateHash: string;
}

export type BackupErrorCode = 'BACKUP_CORRUPT' | 'BACKUP_TRUNCATED' | 'BACKUP_UNREADABLE' | 'RESTORE_REFUSED';

export class BackupError extends Error {
  constructor(
    readonly code: BackupErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** The backup of `machine` as of now, as a stream of buffers (the view is taken at once). */
export function* backupStream(
  machine: QuorateMachine,
  ids: { clusterId: string; nodeId: string; term: number },
): Generator<Buffer> {
  const hash = createHash('sha256');
  const out = (b: Buffer) => {
    hash.update(b);
    return b;
  };
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    clusterId: ids.clusterId,
    nodeId: ids.nodeId,
    index: machine.appliedIndex,
    term: ids.term,
    createdAt: new Date().toISOString(),
    // Same instant as the view below: nothing is applied in between.
    stateHash: machine.hash(),
  };
  const chunks = machine.snapshot();
  const h = Buffer.from(JSON.stringify(header));
  yield out(Buffer.concat([MAGIC, u32(h.length), h]));
  for (const c of chunks)
    yield out(Buffer.concat([u32(c.byteLength), Buffer.from(c.buffer, c.byteOffset, c.byteLength)]));
  yield out(u32(0));
  yield hash.digest();
}

/** Read and check a whole backup file: magic, header, chunks, end marker and checksum. */
export function readBackup(file: string): { header: BackupHeader; chunks: Buffer[] } {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new BackupError('BACKUP_UNREADABLE', `cannot read ${file}: ${(err as Error).message}`);
  }
  const truncated = (what: string) =>
    new BackupError(
      'BACKUP_TRUNCATED',
      `${file} is truncated (${what} missing after ${buf.length} bytes); take the backup again`,
    );
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    if (buf.length < MAGIC.length && MAGIC.subarray(0, buf.length).equals(buf)) throw truncated('the header');
    throw new BackupError('BACKUP_CORRUPT', `${file} is not a quorate backup (no QUORATE-BACKUP header)`);
  }
  let at = MAGIC.length;
  const need = (n: number, what: string) => {
    if (at + n > buf.length) throw truncated(what);
  };
  need(4, 'the header length');
  const hl = buf.readUInt32BE(at);
  at += 4;
  need(hl, 'the header');
  let header: BackupHeader;
  try {
    header = JSON.parse(buf.subarray(at, at + hl).toString('utf8')) as BackupHeader;
  } catch {
    throw new BackupError('BACKUP_CORRUPT', `${file}: the header is not valid JSON; the file is damaged`);
  }
  at += hl;
  const chunks: Buffer[] = [];
  for (;;) {
    need(4, 'a chunk length');
    const n = buf.readUInt32BE(at);
    at += 4;
    if (n === 0) break;
    need(n, 'a chunk');
    chunks.push(buf.subarray(at, at + n));
    at += n;
  }
  need(32, 'the checksum');
  const sum = createHash('sha256').update(buf.subarray(0, at)).digest();
  if (!sum.equals(buf.subarray(at, at + 32))) {
    throw new BackupError('BACKUP_CORRUPT', `${file}: the checksum does not match; the file is damaged`);
  }
  if (at + 32 !== buf.length) {
    throw new BackupError(
      'BACKUP_CORRUPT',
      `${file}: ${buf.length - at - 32} unexpected bytes after the checksum`,
    );
  }
  if (header.format !== BACKUP_FORMAT) {
    throw new BackupError(
      'BACKUP_CORRUPT',
      `${file}: backup format ${header.format}; this quorate reads format ${BACKUP_FORMAT}`,
    );
  }
  return { header, chunks };
}

/** Fetch a backup from a member and store it at `file` (checked before it is renamed into place). */
export async function saveBackup(
  endpoint: string,
  file: string,
  token?: string,
  tls?: HttpTls,
): Promise<{ header: BackupHeader; bytes: number }> {
  let r: Awaited<ReturnType<typeof open>>;
  try {
    r = await open(`${endpoint.replace(/\/+$/, '')}/admin/snapshot`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      timeoutMs: 600_000,
      ...(tls ? { tls } : {}),
    });
  } catch (err) {
    throw new BackupError('BACKUP_UNREADABLE', `${endpoint} did not answer: ${(err as Error).message}`);
  }
  if (r.statusCode !== 200) {
    let text = '';
    for await (const c of r) text += String(c);
    throw new BackupError('BACKUP_UNREADABLE', `${endpoint} refused the backup: ${r.statusCode} ${text}`);
  }
  const tmp = `${file}.partial-${process.pid}`;
  const out = createWriteStream(tmp);
  let bytes = 0;
  try {
    for await (const chunk of r as AsyncIterable<Uint8Array>) {
      bytes += chunk.byteLength;
      if (!out.write(chunk)) await new Promise<void>((res) => out.once('drain', () => res()));
    }
    await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
    const { header } = readBackup(tmp);
    renameSync(tmp, file);
    return { header, bytes };
  } catch (err) {
    out.destroy();
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface RestoreOptions {
  file: string;
  dataDir: string;
  nodeId: string;
  /** Ids of the new cluster's voters (this node among them). */
  members: readonly string[];
  /** Default: a new random id, so the old and new clusters cannot be mixed. */
  clusterId?: string;
}

/**
 * Seed an empty data directory with a backup, as the first state of a new cluster: the
 * log starts after the backup's index, with the new members as voters.
 */
export async function restoreBackup(o: RestoreOptions): Promise<{ header: BackupHeader; clusterId: string }> {
  if (!o.members.includes(o.nodeId)) {
    throw new BackupError(
      'RESTORE_REFUSED',
      `--node-id ${o.nodeId} is not one of the members (${o.members.join(', ')})`,
    );
  }
  if (existsSync(o.dataDir) && readdirSync(o.dataDir).length > 0) {
    throw new BackupError(
      'RESTORE_REFUSED',
      `${o.dataDir} is not empty: a restore seeds a new member's data directory; choose an empty or new one`,
    );
  }
  const { header, chunks } = readBackup(o.file);
  // The state, checked against the hash taken with it; addresses of members of the old
  // cluster are dropped (the new cluster's come from its configuration).
  const machine = new QuorateMachine();
  const conf = { voters: [...o.members], learners: [], votersOutgoing: [] };
  const meta: SnapshotMeta = { index: header.index, term: header.term, conf };
  await machine.restore(
    meta,
    (async function* () {
      yield* chunks;
    })(),
  );
  if (machine.hash() !== header.stateHash) {
    throw new BackupError(
      'BACKUP_CORRUPT',
      `${o.file}: the restored state does not match the backup's state hash`,
    );
  }
  machine.memberAddresses.clear();
  const clusterId = o.clusterId ?? `restored-${randomBytes(6).toString('hex')}`;
  const store = await LmdbStorage.open({ dir: o.dataDir, clusterId, nodeId: o.nodeId });
  try {
    const w = await store.snapshots.create(meta);
    for (const c of machine.snapshot()) await w.write(c);
    await w.commit();
    await store.persist({
      snapshot: meta,
      entries: [],
      hardState: { term: header.term, vote: null, commit: header.index },
      mustSync: true,
    });
  } finally {
    await store.close();
  }
  return { header, clusterId };
}
