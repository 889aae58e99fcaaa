export type { StateMachine } from './state-machine.js';
export type { InitialState, LogReader, LogStorage, PersistBatch } from './storage.js';
export type { Transport, TransportHandler } from './transport.js';
