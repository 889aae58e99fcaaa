import type { TransportLogger } from './options.js';

/**
 * Warnings about untrusted input must not become a flood an attacker controls: at most
 * `burst` lines per window, then one line saying how many were left out.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: TransportLogger | null,
    private readonly prefix: string,
    private readonly burst = 20,
    private readonly windowMs = 10_000,
  ) {}

  warn(message: string): void {
    this.emit(message, false);
  }

  info(message: string): void {
    this.emit(message, true);
  }

  private emit(message: string, info: boolean): void {
    if (!this.logger) return;
    const now = performance.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) {
        this.logger.warn(`${this.prefix}${this.suppressed} more transport warnings were not logged`);
      }
      this.windowStart = now;
      this.used = 0;
      this.suppressed = 0;
    }
    if (this.used >= this.burst) {
      this.suppressed++;
      return;
    }
    this.used++;
    if (info) (this.logger.info ?? this.logger.warn).call(this.logger, this.prefix + message);
    else this.logger.warn(this.prefix + message);
  }
}
