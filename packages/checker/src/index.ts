export {
  type CheckOptions,
  type CheckResult,
  checkHistory,
  checkParsed,
  type KeyFailure,
  type OpView,
} from './check.js';
export {
  CheckerError,
  CheckerErrorCode,
  formatHistoryIssue,
  HistoryFormatError,
  type HistoryIssue,
  HistoryIssueCode,
  isCheckerError,
} from './errors.js';
export {
  type EventType,
  type HistoryCounts,
  type HistoryEvent,
  HistoryParser,
  type LeaseF,
  type Operation,
  type ParsedHistory,
  type ParserOptions,
  parseEvents,
  parseFile,
  parseHistory,
  parseHistoryText,
  parseText,
  type RegisterF,
  type TxnCompare,
  type TxnOutcome,
  type TxnSpec,
  type TxnStep,
  txnKeys,
} from './history.js';
export { type FinalStates, findLostWrites, type LostWrite } from './lost.js';
export { DEFAULT_BUDGET, type KeySearchResult, type SearchOptions, searchKey } from './search.js';
export { type GroupSearchResult, opKeys, searchGroup } from './search-group.js';
export { prng, type SimulateOptions, simulateHistory } from './simulate.js';
