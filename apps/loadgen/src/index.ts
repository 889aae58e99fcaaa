export { checkRun } from './check.js';
export { type HistoryEvent, HistoryFile, type HistorySink } from './history.js';
export { type Checker, FinalStateError, finalStates, main } from './main.js';
export { NetLab, netlabUnavailable } from './nemesis/netlab.js';
export { buildProgram, type LoadgenOptions, LoadgenUsageError, resolveOptions } from './options.js';
export { type FaultRecord, formatTable, type Report, toHtml, toJson } from './report.js';
export { type RunOptions, type RunResult, run } from './runner.js';
export {
  freePort,
  LocalCluster,
  type LocalClusterOptions,
  resolveNodeBin,
  type SpawnedNode,
} from './spawn.js';
export { type LatencySummary, type SecondLine, Stats } from './stats.js';
export { keyName, type Mode, Workload, type WorkloadOptions, zipfSampler } from './workload.js';
