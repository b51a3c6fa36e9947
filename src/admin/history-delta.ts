/**
 * Both ends of the live stream's history delta, as two pure functions. A client's `stats.history`
 * is one point per second for the last 5 minutes (core/call-stats.ts): up to 300 points, ~34 KB of
 * JSON per client, and all but the newest one or two are the same from one tick to the next. So
 * the stream (stream.ts) sends the history whole once, and then only its tail (`historyTail`);
 * the page puts the pieces back together (`mergeHistories`).
 *
 * Points are matched by second, not by exact `at`: `at` is the wall clock derived per snapshot
 * (`wallNow - now` is read afresh each time), so the same second can come back a millisecond off.
 * Two points less than half a second apart are the same second.
 *
 * `mergeHistories` runs in the browser too: the page script inlines it with `toString()`, so it is
 * written to survive that — no reference to anything outside its body, no nested function (a
 * bundler's keep-names helper would be left behind), nothing a browser lacks.
 */

/** What the delta needs of a history point. */
export interface HistoryPoint {
  /** Wall-clock start of the second, ms since the epoch. */
  readonly at: number;
}

/** What the delta needs of a client snapshot. */
export interface HistoryCarrier<P extends HistoryPoint> {
  readonly service: string;
  readonly stats: { readonly history: readonly P[] };
}

/** Two points closer than this are the same second, ms. */
const SAME_SECOND_MS = 500;

/**
 * What an update sends of `history` (oldest first, one point per second) to a page that has
 * received it up to the point at `lastSentAt`: that point again (its second may have been
 * still filling) and every newer one — and never fewer than the last 2, so a wall clock stepped
 * back still finalizes the second before the current one. `lastSentAt` undefined (a client the
 * page has not seen): the whole history.
 * @example historyTail(history, previous.at(-1)?.at) // usually the last 1 or 2 points
 */
export function historyTail<P extends HistoryPoint>(
  history: readonly P[],
  lastSentAt: number | undefined,
): readonly P[] {
  if (lastSentAt === undefined) return history;
  let from = history.length;
  while (from > 0 && history[from - 1]!.at > lastSentAt - SAME_SECOND_MS) from--;
  return history.slice(Math.max(0, Math.min(from, history.length - 2)));
}

/**
 * The page's histories after an event: one array per service in `clients`, oldest first. With
 * `full` (a `snapshot` event) each is the client's history as sent; otherwise (an `update`) the
 * kept history with the sent points replacing every kept point from the first sent point's second
 * on, and the newer ones appended. Services not in `clients` are dropped; a service without a
 * kept history starts from what was sent. Each history keeps at most 300 points and nothing 5
 * minutes or more older than its newest point (call-stats.ts keeps the same).
 *
 * Returns a new map; `kept` and its arrays are left as they are.
 * @example histories = mergeHistories(histories, snapshot.clients, event.type === "snapshot");
 */
export function mergeHistories<P extends HistoryPoint>(
  kept: ReadonlyMap<string, readonly P[]>,
  clients: readonly HistoryCarrier<P>[],
  full: boolean,
): Map<string, P[]> {
  // Literals, not imports: this body is inlined into the page script as it stands.
  const maxPoints = 300;
  const maxSpanMs = 300000;
  const sameSecondMs = 500; // SAME_SECOND_MS
  const merged = new Map<string, P[]>();
  for (let c = 0; c < clients.length; c++) {
    const service = clients[c]!.service;
    const sent = clients[c]!.stats.history;
    const before = full ? undefined : kept.get(service);
    let history: P[] = [];
    if (before !== undefined && sent.length > 0) {
      const firstAt = sent[0]!.at;
      for (let i = 0; i < before.length && before[i]!.at <= firstAt - sameSecondMs; i++) history.push(before[i]!);
    } else if (before !== undefined) {
      history = before.slice();
    }
    for (let i = 0; i < sent.length; i++) history.push(sent[i]!);
    if (history.length > 0) {
      const oldestAt = history[history.length - 1]!.at - maxSpanMs;
      let from = Math.max(0, history.length - maxPoints);
      while (from < history.length && history[from]!.at <= oldestAt) from++;
      if (from > 0) history = history.slice(from);
    }
    merged.set(service, history);
  }
  return merged;
}
