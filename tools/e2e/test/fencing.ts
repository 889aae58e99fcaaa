/**
 * The promise `LeaderElector` makes, as a check over what the example service logged and
 * what its fencing-aware store decided.
 *
 * A unit of work runs from `unit-start` (logged after the holder checked `isLeader`) to
 * `unit-end` (logged once the store answered). Its effect is the store's decision, taken
 * at the store's own time. Two holders' units may overlap in the service log only where
 * the fencing token did its work:
 *
 * - a unit may start while another holder's unit is still open if that other unit's write
 *   was refused by the store (a holder frozen between its check and its write: the case
 *   fencing tokens exist for), or never reached it;
 * - an accepted write must have been accepted before any other holder's unit started
 *   (else two holders acted at once, and the store took both);
 * - a unit that starts after the service logged the end of another holder's unit is
 *   always fine.
 */

export interface LogLine {
  at: number;
  holder: string;
  what: string;
  token?: number;
  unit?: number;
  accepted?: boolean;
}

/** What the store decided for one unit (identified by holder and unit number). */
export interface StoreDecision {
  holder: string;
  unit: number;
  token: number;
  at: number;
  accepted: boolean;
  /**
   * When (on the store's clock) the holder last checked it led before this write: the
   * arrival time less the age of that check as the holder measured it. An upper bound of
   * the true moment, off by at most the write's time in flight.
   */
  believedAt?: number;
}

export interface Unit {
  holder: string;
  unit: number;
  token: number;
  start: number;
  /** When the service logged the end (null: the unit never ended, e.g. the holder was killed). */
  end: number | null;
  /** The store's decision, if the write reached it. */
  decision: StoreDecision | null;
}

/** Units whose start or end falls in [from, to] (so each test judges its own window). */
export function unitsIn(
  lines: readonly LogLine[],
  decisions: readonly StoreDecision[],
  from = Number.NEGATIVE_INFINITY,
  to = Number.POSITIVE_INFINITY,
): Unit[] {
  const byId = new Map(decisions.map((d) => [`${d.holder}:${d.unit}`, d]));
  const units = new Map<string, Unit>();
  for (const l of lines) {
    if (l.unit === undefined) continue;
    const id = `${l.holder}:${l.unit}`;
    if (l.what === 'unit-start') {
      units.set(id, {
        holder: l.holder,
        unit: l.unit,
        token: l.token ?? -1,
        start: l.at,
        end: null,
        decision: byId.get(id) ?? null,
      });
    } else if (l.what === 'unit-end') {
      const u = units.get(id);
      if (u) u.end = l.at;
    }
  }
  return [...units.values()]
    .filter((u) => (u.start >= from && u.start <= to) || (u.end !== null && u.end >= from && u.start <= to))
    .sort((a, b) => a.start - b.start);
}

/**
 * Every breach of the promise among `units`, as sentences (empty when it held). For each
 * pair of units of different holders where `b` started while `a` was open, `a`'s write
 * must not have been accepted after `b` started.
 */
export function fencingBreaches(units: readonly Unit[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < units.length; i++) {
    const a = units[i]!;
    for (let j = 0; j < units.length; j++) {
      const b = units[j]!;
      if (a.holder === b.holder || b.start < a.start) continue;
      const aOpen = a.end === null || b.start < a.end;
      if (!aOpen) continue;
      const d = a.decision;
      if (d === null || !d.accepted) continue; // refused (fenced) or never reached the store
      if (d.at > b.start) {
        out.push(
          `${b.holder} started unit ${b.unit} (token ${b.token}) at ${b.start} while ${a.holder}'s unit ${a.unit} (token ${a.token}, started ${a.start}) was open, and the store accepted ${a.holder}'s write at ${d.at}, after that`,
        );
      }
    }
  }
  return out;
}
