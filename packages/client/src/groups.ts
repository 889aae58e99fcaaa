/**
 * Which Raft group holds a key, on a cluster that shards its key space over several groups
 * (`cluster.groups` on the node). The node and the client compute it the same way: FNV-1a
 * (32 bits) over the key's UTF-8 bytes, modulo the group count. A hash spreads keys evenly
 * whatever their names (sequential keys do not pile into one group); the price is that a
 * prefix listing asks every group and merges the answers.
 */
const encoder = new TextEncoder();

export function groupOfKey(key: string, groups: number): number {
  if (groups <= 1) return 0;
  let h = 0x811c9dc5;
  for (const b of encoder.encode(key)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % groups;
}
