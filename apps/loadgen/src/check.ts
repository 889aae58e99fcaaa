/**
 * The load generator's `--check`: the history must be linearizable for the key-value
 * register model (per key, ambiguous operations may or may not have happened), and no
 * acknowledged write may be missing from the final state read back from every replica.
 */
import { checkHistory, findLostWrites, parseHistory } from '@quorate/checker';
import type { Checker } from './main.js';

export const checkRun: Checker = async (history, finals) => {
  const t0 = performance.now();
  const parsed = await parseHistory(history.events);
  const result = await checkHistory(parsed);
  const lost = findLostWrites(parsed.ops, finals);
  const details: string[] = [];
  for (const f of result.failures.slice(0, 3)) {
    details.push(
      `key ${JSON.stringify(f.key)}: ${f.reason}; ${f.window.map((o) => `p${o.process} ${o.text}`).join(', ')}`,
    );
  }
  if (result.unknownKeys.length > 0)
    details.push(`out of search budget: ${result.unknownKeys.slice(0, 5).join(', ')}`);
  for (const l of lost.slice(0, 3)) {
    details.push(
      `lost: key ${JSON.stringify(l.key)} on ${l.replica}: p${l.process} wrote ${JSON.stringify(l.wrote)}, found ${JSON.stringify(l.found)}`,
    );
  }
  // One lost write may show on several replicas: count writes, not sightings.
  const lostWrites = new Set(lost.map((l) => `${l.key}\u0000${l.process}\u0000${l.wrote}`)).size;
  return {
    linearizable: result.linearizable,
    lostWrites,
    checkedOps: result.ops,
    checkMs: performance.now() - t0,
    ...(details.length > 0 ? { detail: details.join('\n               ') } : {}),
  };
};
