/**
 * What a network transport needs from its sockets, and nothing more: a stream layer that
 * listens and dials, and connections that carry bytes. `@quorate/transport-tcp` and
 * `@quorate/transport-ws` each implement these; framing, the handshake, queues and
 * reconnection live above them in `NetworkTransport`.
 */

export interface ConnectionEvents {
  /** Bytes from the peer: any slice of the stream, or one whole message when `messageFramed`. */
  data(chunk: Buffer): void;
  /** The connection can take more data after `bufferedBytes` was high. */
  drain(): void;
  /** The connection is gone (either side, any reason). Called once. */
  close(error?: Error): void;
}

export interface Connection {
  /** The other end, as `host:port`, for logs. */
  readonly remoteAddress: string;
  /**
   * True when every `data` chunk is one transport message holding whole frames (WebSocket);
   * a message that ends inside a frame is then a truncated frame.
   */
  readonly messageFramed: boolean;
  /** Bytes accepted by `write` and not yet handed to the operating system. */
  readonly bufferedBytes: number;
  /** Start delivering events. Called once, right after the connection is handed over. */
  attach(events: ConnectionEvents): void;
  /**
   * Write these frames as one unit (one system call, or one WebSocket message); `done` runs
   * once they are handed to the operating system, or with an error.
   */
  write(frames: readonly Buffer[], done: (error?: Error | null) => void): void;
  /** The largest message the layer buffers before handing it over, for message-framed layers. */
  setMaxMessageBytes?(bytes: number): void;
  /** Flush what is written, then close. */
  end(): void;
  /** Close at once, dropping what is buffered. */
  destroy(): void;
}

export interface StreamLayer {
  /**
   * Start accepting connections; resolves with the address peers dial to reach this
   * listener (with the port the OS chose, when it chose one). `onRefused` hears about
   * connections the layer itself turned away (a failed TLS handshake, a bad upgrade).
   */
  listen(
    onConnection: (connection: Connection) => void,
    onRefused: (remoteAddress: string, error: Error) => void,
  ): Promise<string>;
  /**
   * Connect to a peer's address. Rejects when the connection cannot be made; abandons the
   * attempt (and rejects) when `signal` aborts.
   */
  dial(address: string, signal: AbortSignal): Promise<Connection>;
  /** Stop accepting. Connections already handed over are the transport's to close. */
  close(): Promise<void>;
}
