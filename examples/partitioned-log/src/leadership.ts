/**
 * One leadership of one partition: one leader epoch, from the `leading` event of this
 * broker's `PartitionMember` until its `lost` event (or until a follower or a producer
 * shows a newer leader epoch: then this broker is deposed). It keeps the followers'
 * progress and changes the eligible set through quorate, one compare-and-set at a time.
 *
 * Entries are appended at the leader epoch, which never changes during a leadership. The
 * **epoch** does: each change of the eligible set adds one, whoever made it (this leader,
 * an admin, or quorate dropping a follower whose session lapsed). The leadership's view,
 * `epoch` and the eligible set, moves only with the member's events (`leading`, then
 * `epoch`), so it is always the view the member's compare-and-set names.
 */
import { ClientError, type PartitionState } from '@quorate/client';
import { ReplicaProgress } from './progress.js';

export interface LeadershipDeps {
  readonly self: string;
  readonly partition: number;
  readonly maxLagMs: number;
  now(): number;
  /** The log's end right now. */
  end(): number;
  /** Compare-and-set of the eligible set at the epoch the member knows (`PartitionMember.setEligible`). */
  setEligible(eligible: string[]): Promise<PartitionState>;
  /** Wake whoever waits on this leadership (acknowledgements, long polls). */
  changed(): void;
  say(message: string): void;
}

/** The partition as the member announced the leadership. */
export interface LeadershipStart {
  readonly leaderEpoch: number;
  readonly epoch: number;
  readonly eligible: readonly string[];
  readonly replicas: readonly string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Leadership {
  /** The leader epoch entries are appended at, and data-plane requests are fenced on. */
  readonly leaderEpoch: number;
  /** The epoch the eligible set is at (what a compare-and-set names): the member's. */
  epoch: number;
  readonly progress: ReplicaProgress;
  private ended = false;
  /** Changes of the eligible set run one at a time, in this chain. */
  private control: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: LeadershipDeps,
    start: LeadershipStart,
    readonly signal: AbortSignal,
    highWatermark: number,
  ) {
    this.leaderEpoch = start.leaderEpoch;
    this.epoch = start.epoch;
    this.progress = new ReplicaProgress(deps.self, start.replicas, start.eligible, highWatermark, deps.now());
  }

  /** Whether this leadership still holds: not ended, and the member's signal not aborted. */
  get active(): boolean {
    return !this.ended && !this.signal.aborted;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.deps.changed();
  }

  /** Move the high watermark (while active); returns it. */
  advance(): number {
    if (!this.active) return this.progress.highWatermark;
    return this.progress.advance(this.deps.end());
  }

  /**
   * The member says the eligible set changed (same leader epoch, newer epoch): this
   * leader's own change, or one quorate or an admin made. It also settles a change of
   * this leader's in flight: that one named an older epoch, so it either is this change or
   * can no longer apply.
   */
  onEpoch(epoch: number, eligible: readonly string[]): void {
    if (!this.active || epoch <= this.epoch) return;
    this.deps.say(
      `partition ${this.deps.partition}: eligible ${eligible.join(',')} at epoch ${epoch} (leader epoch ${this.leaderEpoch})`,
    );
    this.epoch = epoch;
    this.progress.confirm(eligible);
    this.deps.changed();
  }

  /** The periodic work: ask for the next change of the eligible set, if one is due. */
  tick(): void {
    if (!this.active || this.progress.changing) return;
    const change = this.progress.nextChange(this.deps.end(), this.deps.now(), this.deps.maxLagMs);
    if (!change) return;
    const at = this.epoch;
    this.progress.propose(change.eligible);
    this.deps.changed();
    this.deps.say(
      `partition ${this.deps.partition}: eligible ${this.progress.eligible.join(',')} -> ${change.eligible.join(',')} at epoch ${at} (${change.why})`,
    );
    void this.serially(() => this.changeEligible([...change.eligible], at));
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const next = this.control.then(work, work);
    this.control = next.catch(() => {});
    return next.catch((err) => this.deps.say(`partition ${this.deps.partition}: ${String(err)}`));
  }

  /**
   * Until quorate answers definitely, or the epoch moves on: an ambiguous failure (a
   * timeout) may still have applied, so the proposed set stays in the acknowledgement set
   * and the same compare-and-set is sent again, at the same epoch (where it can apply at
   * most once). A newer epoch settles it either way, and brings the set as it is
   * (`onEpoch`). A refusal means it did not apply and never will.
   */
  private async changeEligible(eligible: string[], at: number): Promise<void> {
    while (this.active && this.epoch === at && this.progress.changing) {
      try {
        const s = await this.deps.setEligible(eligible);
        // The member's `epoch` event usually came first; this is for when it did not.
        if (this.active && s.leaderEpoch === this.leaderEpoch && s.epoch >= this.epoch) {
          this.epoch = s.epoch;
          this.progress.confirm(s.eligible);
          this.deps.changed();
        }
        return;
      } catch (err) {
        if (err instanceof ClientError && err.ambiguous) {
          await sleep(100);
          continue;
        }
        // Refused (a newer epoch: quorate's or an admin's change came first, and the
        // member brings it; or a newer leader epoch: the member ends this leadership).
        this.deps.say(
          `partition ${this.deps.partition}: eligible ${eligible.join(',')} refused: ${String(err)}`,
        );
        if (this.active && this.epoch === at) {
          this.progress.confirm(this.progress.eligible);
          this.deps.changed();
        }
        return;
      }
    }
  }
}
