export { isTransportError, TransportConfigError, TransportError, TransportErrorCode } from '@quorate/codec';
export type {
  CloseReport,
  PeerAddress,
  PeerStats,
  TransportLogger,
  TransportStats,
} from '@quorate/transport-engine';
export { formatHostPort, parseHostPort } from './address.js';
export { type TcpLayerOptions, TcpStreamLayer, type TcpTlsOptions } from './tcp-layer.js';
export { TcpGroupTransport, TcpTransport, type TcpTransportOptions } from './tcp-transport.js';
