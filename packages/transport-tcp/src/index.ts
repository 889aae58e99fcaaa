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
export { formatHostPort, parseHostPort } from './address.js';
export { type TcpLayerOptions, TcpStreamLayer, type TcpTlsOptions } from './tcp-layer.js';
export { TcpTransport, type TcpTransportOptions } from './tcp-transport.js';
