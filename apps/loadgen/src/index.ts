export { run, type RunOptions, type RunResult } from './runner.js';
export { Workload, type WorkloadOptions, type Mode, keyName, zipfSampler } from './workload.js';
export { Stats, type SecondLine, type LatencySummary } from './stats.js';
export { HistoryFile, type HistoryEvent, type HistorySink } from './history.js';
export { formatTable, toHtml, toJson, type Report, type FaultRecord } from './report.js';
