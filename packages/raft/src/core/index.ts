/**
 * `@quorate/raft/core`: the pure Raft state machine, for hosts that bring their own
 * runtime (their own loop, threads or scheduler). Most users want `RaftNode` from the
 * package root, which drives this core.
 *
 * The host contract is documented on `Ready`: send `messages` at once, persist the batch
 * (batches become durable in order), then call `persisted()` and send
 * `messagesAfterPersist`, apply `committedEntries`, call `applied()`.
 */
export { applyChange, bootstrapEntries, decodeConfChange, encodeConfChange } from './confchange.js';
export type { RaftEvent, RaftEventType } from './events.js';
export { type MergedBatch, mergeReadies } from './merge.js';
export { jointIndex, jointVote, majorityIndex, majorityVote, type VoteResult } from './quorum.js';
export { type ProposeResult, RaftCore } from './raft.js';
export { type RandomInt, seededRandom } from './random.js';
export type { CoreStatus, ProgressStatus, ReadState, Ready } from './ready.js';
