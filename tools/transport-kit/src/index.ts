export { childExecArgv, type MemberConfig, type TestTls, type TransportKit } from './config.js';
export { type CutProxy, type CutProxyOptions, cutProxy, portOf, withPort } from './cut-proxy.js';
export { fuzzCases, fuzzListener } from './fuzz/runner.js';
export { type FuzzCase, type FuzzOptions, type FuzzReport, FuzzRng } from './fuzz/shared.js';
export {
  clusterTls,
  intrude,
  type NetworkHarnessOptions,
  networkHarness,
  PHANTOM,
  TEST_CLUSTER,
  TEST_SECRET,
} from './harness.js';
export { MemberProcess, runMemberProcess } from './member-process.js';
export { type TestCertificate, type TestPki, testPki } from './pki.js';
export { ChildHandle, serveParent, settledHeap } from './process.js';
export { handshakeSlotCases, type SlotCase } from './slots.js';
export { type SnapshotCase, snapshotTransferCases } from './snapshots.js';
export { waitUntil } from './wait.js';
export { type HandshakeParams, WireClient } from './wire-client.js';
