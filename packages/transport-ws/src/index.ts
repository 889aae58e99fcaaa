export {
  type CloseReport,
  isTransportError,
  type PeerAddress,
  type PeerStats,
  TransportConfigError,
  TransportError,
  TransportErrorCode,
  type TransportLogger,
  type TransportStats,
} from '@quorate/codec';
export { type WsLayerOptions, WsStreamLayer, type WsTlsOptions } from './ws-layer.js';
export { DEFAULT_WS_PATH, WsTransport, type WsTransportOptions } from './ws-transport.js';
