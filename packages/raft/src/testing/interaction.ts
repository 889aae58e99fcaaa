/**
 * A tiny, synchronous host for scenario tests: a few cores on in-memory storage, a
 * message queue you deliver by hand or until quiet, and a readable trace of what went
 * over the wire. Tests read like the scenario they check:
 *
 *   const env = new InteractionEnv(3);
 *   env.campaign('n1');
 *   env.stabilize();
 *   expect(env.trace()).toMatchInlineSnapshot(...)
 */

import { decodeConfChange } from '../core/confchange.js';
import type { CoreOptions } from '../core/config.js';
import type { RaftEvent } from '../core/events.js';
import { RaftCore } from '../core/raft.js';
import { seededRandom } from '../core/random.js';
import type { ReadState } from '../core/ready.js';
import { MemoryStorage } from '../memory/memory-storage.js';
import { type ConfChange, type Entry, EntryType, type Message, type NodeId } from '../types.js';
import { formatMessage } from './format.js';

export interface InteractionNode {
  readonly id: NodeId;
  core: RaftCore;
  readonly storage: MemoryStorage;
  /** Application data of every entry applied, in order (no-ops left out). */
  readonly applied: string[];
  readonly readStates: ReadState[];
  readonly events: RaftEvent[];
}

export interface InteractionOptions {
  seed?: number;
  options?: Partial<CoreOptions>;
  /** Ids, default n1..nN. */
  ids?: NodeId[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class InteractionEnv {
  readonly nodes = new Map<NodeId, InteractionNode>();
  /** Messages in flight, in send order. */
  queue: Message[] = [];
  private lines: string[] = [];
  private readonly cut = new Set<string>();
  private readonly held = new Set<NodeId>();
  private readonly seed: number;
  private readonly options: Partial<CoreOptions>;

  constructor(n: number, opts: InteractionOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.options = opts.options ?? {};
    const ids = opts.ids ?? Array.from({ length: n }, (_, i) => `n${i + 1}`);
    for (const id of ids) {
      const storage = new MemoryStorage({ voters: ids, learners: [], votersOutgoing: [] });
      this.nodes.set(id, this.makeNode(id, storage));
      this.process(id); // apply the founding membership
    }
  }

  private makeNode(id: NodeId, storage: MemoryStorage): InteractionNode {
    const events: RaftEvent[] = [];
    const rnd = seededRandom(this.seed * 1000 + Number.parseInt(id.replace(/\D/g, '') || '0', 10));
    const core = new RaftCore({ id, random: rnd, ...this.options, onEvent: (e) => events.push(e) }, storage);
    return { id, core, storage, applied: [], readStates: [], events };
  }

  node(id: NodeId): InteractionNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Forget volatile state: a new core over the same storage (a crash and restart). */
  restart(id: NodeId): void {
    const n = this.node(id);
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    this.nodes.set(id, this.makeNode(id, n.storage));
    this.process(id);
    this.log(`restart ${id}`);
  }

  campaign(id: NodeId): void {
    this.log(`campaign ${id}`);
    this.node(id).core.campaign();
    this.process(id);
  }

  tick(id: NodeId, n = 1): void {
    const node = this.node(id);
    for (let i = 0; i < n; i++) node.core.tick();
    this.process(id);
  }

  /** Tick every node `n` times, processing after each round. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.core.tick();
      for (const id of this.nodes.keys()) this.process(id);
    }
  }

  propose(id: NodeId, data: string): { index: number; term: number } {
    const r = this.node(id).core.propose(enc.encode(data));
    this.process(id);
    return r;
  }

  readIndex(id: NodeId, requestId: number): void {
    this.node(id).core.readIndex(requestId);
    this.process(id);
  }

  transfer(from: NodeId, to: NodeId): void {
    this.log(`transfer ${from} -> ${to}`);
    this.node(from).core.transferLeadership(to);
    this.process(from);
  }

  /** Drop every message between `a` and `b`, both ways, from now on. */
  partition(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}|${b}`);
    this.cut.add(`${b}|${a}`);
  }

  /** Cut `id` off from everyone. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.partition(id, other);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Stop running the host contract for `id`: the test takes its readies by hand. */
  hold(id: NodeId): void {
    this.held.add(id);
  }

  release(id: NodeId): void {
    this.held.delete(id);
    this.process(id);
  }

  /** Run the host contract for one node until it has nothing more to do. */
  process(id: NodeId): void {
    if (this.held.has(id)) return;
    const n = this.node(id);
    while (n.core.hasReady()) {
      const rd = n.core.ready();
      for (const m of rd.messages) this.enqueue(m);
      if (rd.mustPersist) {
        n.storage.persistSync({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
      }
      n.core.persisted(rd);
      for (const m of rd.messagesAfterPersist) this.enqueue(m);
      for (const e of rd.committedEntries) this.apply(n, e);
      if (rd.committedEntries.length > 0) {
        n.core.applied(rd.committedEntries[rd.committedEntries.length - 1]!.index);
      }
      for (const r of rd.readStates) n.readStates.push(r);
    }
  }

  private apply(n: InteractionNode, e: Entry): void {
    if (e.type === EntryType.ConfChange) {
      n.core.applyConfChange(decodeConfChange(e.data));
      return;
    }
    if (e.data.byteLength > 0) n.applied.push(dec.decode(e.data));
  }

  /** Add a node with an empty store (it learns the membership from the leader). */
  addNode(id: NodeId): InteractionNode {
    const node = this.makeNode(id, new MemoryStorage());
    this.nodes.set(id, node);
    return node;
  }

  proposeConf(id: NodeId, cc: ConfChange): { index: number; term: number } {
    this.log(`conf ${cc.kind} ${cc.node}`);
    const r = this.node(id).core.proposeConfChange(cc);
    this.process(id);
    return r;
  }

  private enqueue(m: Message): void {
    if (this.cut.has(`${m.from}|${m.to}`)) {
      this.log(`${formatMessage(m)} DROPPED`);
      return;
    }
    this.queue.push(m);
  }

  /** Deliver queued messages (those matching `filter`, default all) once; returns how many. */
  deliver(filter?: (m: Message) => boolean): number {
    const now = this.queue;
    this.queue = [];
    let count = 0;
    const touched = new Set<NodeId>();
    for (const m of now) {
      if (filter && !filter(m)) {
        this.queue.push(m);
        continue;
      }
      const to = this.nodes.get(m.to);
      if (!to) continue;
      this.log(formatMessage(m));
      to.core.step(m);
      touched.add(m.to);
      count++;
    }
    for (const id of touched) this.process(id);
    return count;
  }

  /** Deliver until no message is left. */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      for (const id of this.nodes.keys()) this.process(id);
      if (this.queue.length === 0) return;
      this.deliver();
    }
    throw new Error('stabilize: still busy after many rounds (a message loop?)');
  }

  leader(): NodeId | null {
    const leaders = [...this.nodes.values()].filter((n) => n.core.currentRole === 'leader');
    return leaders.length === 1 ? leaders[0]!.id : null;
  }

  /** One line per node: role, term, leader, commit, last index. */
  state(): string {
    return [...this.nodes.values()]
      .map((n) => {
        const s = n.core.status();
        return `${n.id}: ${s.role} term=${s.term} lead=${s.leaderId ?? '-'} commit=${s.commit} last=${s.lastIndex}`;
      })
      .join('\n');
  }

  log(line: string): void {
    this.lines.push(line);
  }

  /** The trace since the last call, one message or command per line. */
  trace(): string {
    const out = this.lines.join('\n');
    this.lines = [];
    return out;
  }
}
