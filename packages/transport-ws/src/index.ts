export { isTransportError, TransportConfigError, TransportError, TransportErrorCode } from '@quorate/codec';
export type {
  CloseReport,
  PeerAddress,
  PeerStats,
  TransportLogger,
  TransportStats,
} from '@quorate/transport-engine';
export { type WsLayerOptions, WsStreamLayer, type WsTlsOptions } from './ws-layer.js';
export { DEFAULT_WS_PATH, WsTransport, type WsTransportOptions } from './ws-transport.js';
