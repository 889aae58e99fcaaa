export { entryKey, SafetyChecker, type Violation, type ViolationKind } from './checker.js';
export { formatFailure, type RunSummary, runSeeds, summarize } from './run.js';
export {
  defaultFaults,
  type FaultProfile,
  memorySimStorage,
  type SimOptions,
  type SimResult,
  type SimStats,
  type SimStorage,
  Simulation,
  simulate,
  TICK_US,
} from './simulator.js';
