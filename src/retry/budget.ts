/**
 * The retry budget (Finagle's RetryBudget, Linkerd's retry budget): retries may add at most
 * `ratio` of the request rate, plus a floor of `minPerSecond`, measured over `ttlMs`.
 *
 * Every call deposits `ratio` of a token; every retry or hedge withdraws one. Deposits and
 * withdrawals are kept in a ring of time slots covering `ttlMs`, so they expire together after
 * `ttlMs`; a reserve of `minPerSecond × ttlMs / 1000` tokens per window lets a quiet client
 * still retry. Under a total outage with N calls/s offered, servers see at most
 * N × (1 + ratio) + minPerSecond attempts per second — about 1.2 N + 10 — never N × maxAttempts.
 *
 * Pure: time comes in as numbers, no timer.
 */

export interface RetryBudgetConfig {
  /** Fraction of calls that may be retried. Default 0.2 (Finagle, Linkerd). */
  readonly ratio: number;
  /** Retries allowed per second whatever the traffic. Default 10 (Finagle, Linkerd). */
  readonly minPerSecond: number;
  /** How long a deposit counts, ms. Default 10 000 (Finagle, Linkerd). */
  readonly ttlMs: number;
}

export const DEFAULT_BUDGET: RetryBudgetConfig = Object.freeze({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 });

const SLOTS = 10;

export class RetryBudget {
  readonly config: RetryBudgetConfig;
  readonly #slotMs: number;
  readonly #reserve: number;
  /** Net tokens per slot: deposits minus withdrawals. */
  readonly #slots = new Float64Array(SLOTS);
  /** The absolute slot number each ring entry holds. */
  readonly #slotIds = new Float64Array(SLOTS).fill(-1);
  #sum = 0;

  constructor(config: RetryBudgetConfig = DEFAULT_BUDGET) {
    this.config = config;
    this.#slotMs = config.ttlMs / SLOTS;
    this.#reserve = (config.minPerSecond * config.ttlMs) / 1000;
  }

  /** Records a call (not a retry): it earns `ratio` of a retry. */
  deposit(nowMs: number): void {
    this.#add(nowMs, this.config.ratio);
  }

  /** Takes one token for a retry or hedge; false when the budget is spent. */
  tryWithdraw(nowMs: number): boolean {
    this.#expire(nowMs);
    // The epsilon absorbs float error: 5 deposits of 0.2 make one whole retry.
    if (this.#reserve + this.#sum < 1 - 1e-9) return false;
    this.#add(nowMs, -1);
    return true;
  }

  /** Tokens available now (for snapshots). */
  balance(nowMs: number): number {
    this.#expire(nowMs);
    return Math.max(0, this.#reserve + this.#sum);
  }

  #add(nowMs: number, amount: number): void {
    const id = Math.floor(nowMs / this.#slotMs);
    const at = id % SLOTS;
    if (this.#slotIds[at] !== id) {
      this.#sum -= this.#slots[at] as number;
      this.#slots[at] = 0;
      this.#slotIds[at] = id;
    }
    this.#slots[at] = (this.#slots[at] as number) + amount;
    this.#sum += amount;
  }

  /** Drops slots older than `ttlMs`. */
  #expire(nowMs: number): void {
    const current = Math.floor(nowMs / this.#slotMs);
    for (let i = 0; i < SLOTS; i++) {
      const id = this.#slotIds[i] as number;
      if (id !== -1 && current - id >= SLOTS) {
        this.#sum -= this.#slots[i] as number;
        this.#slots[i] = 0;
        this.#slotIds[i] = -1;
      }
    }
  }
}
