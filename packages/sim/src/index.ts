/**
 * `@quorate/sim`: whole clusters of real `RaftNode`s on virtual time, a simulated network
 * and simulated disks, driven by one seed and checked for Raft's invariants and for
 * linearizability. `pnpm sim -- --seeds N` runs it from the command line.
 */
export { Digest } from './digest.js';
export { memorySimStorage, type SimStorage } from './disk.js';
export {
  formatGroupFailure,
  type GroupSimOptions,
  type GroupSimResult,
  GroupSimulation,
  simulateGroups,
} from './groups.js';
export { decodeOp, encodeOp, type KvOp, type KvResult, SimKV } from './kv.js';
export { formatFailure, type RunSummary, runSeeds, summarize } from './run.js';
export { entryKey, SafetyChecker, type Violation, type ViolationKind } from './safety.js';
export {
  defaultFaults,
  type FaultProfile,
  type SimOptions,
  type SimResult,
  type SimStats,
  Simulation,
  simulate,
  TICK_US,
} from './simulator.js';
