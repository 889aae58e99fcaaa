/**
 * The core draws randomness only from a generator handed to it, so a seed replays a run.
 * `seededRandom` is a small, fast, well-distributed PRNG (sfc32) for the simulator and
 * tests; hosts may pass any function with the same shape.
 */

/** Returns an integer in `[0, n)`. */
export type RandomInt = (n: number) => number;

export function seededRandom(seed: number): RandomInt & { next(): number } {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b);
  let c = 0xb7e15162 ^ Math.imul(seed, 0xc2b2ae35);
  let d = 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  const fn = ((n: number) => Math.floor(next() * n)) as RandomInt & { next(): number };
  fn.next = next;
  return fn;
}
