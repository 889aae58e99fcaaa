/**
 * A running 64-bit hash of a run's event trace (FNV-1a over two 32-bit lanes with
 * different offsets): same seed, same events, same digest. Not cryptographic: it tells
 * runs apart, it does not authenticate them.
 */
export class Digest {
  private a = 0x811c9dc5;
  private b = 0x050c5d1f;
  /** Events hashed. */
  count = 0;

  add(s: string): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193) ^ (a >>> 15);
    }
    // A separator, so that "ab"+"c" and "a"+"bc" differ.
    this.a = Math.imul(a ^ 0x1f, 0x01000193);
    this.b = Math.imul(b ^ 0x1e, 0x01000193);
    this.count++;
  }

  hex(): string {
    return (this.a >>> 0).toString(16).padStart(8, '0') + (this.b >>> 0).toString(16).padStart(8, '0');
  }
}
