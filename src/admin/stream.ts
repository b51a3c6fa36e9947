/**
 * The live feed behind the dashboard: Server-Sent Events, one `snapshot` event at once and then
 * one event every `intervalMs`. SSE rather than WebSocket because the feed is one-way, works
 * through plain HTTP/1.1 with no library on either side, and `EventSource` reconnects by itself.
 *
 * Wire format (each `data:` is one line of JSON: JSON.stringify never emits a newline):
 *
 * | event | data | the page |
 * |---|---|---|
 * | `snapshot` | `mesh.snapshot()` as `/admin/snapshot.json` has it | replaces everything it holds |
 * | `update` | the same, but each client's and each server's `stats.history` cut to its tail (below) | merges the histories, takes the rest as is |
 * | `failure` | `{ "error": "…" }`: the snapshot threw | keeps what it shows |
 *
 * Why `update`: a client's history is one point per second for 5 minutes, up to 300 points
 * (~34 KB of JSON) per client, and a tick changes only the newest one or two. An `update`'s
 * history holds the points from the newest point of the previous tick on — that one again,
 * because its second was still filling when it was sent, then the newer ones (usually 1 or 2
 * points in all; never fewer than the last 2) — and the whole history of a client that was not in
 * the previous tick. The page replaces its points from the first sent point's second on (same
 * second: `at` within 500 ms, as `at` can come back a millisecond off) and appends the rest:
 * `mergeHistories` in history-delta.ts, the very function the page runs.
 *
 * A server's history (`servers[].stats.history`, from `weft/server`'s `inbound({ mesh })`) is the
 * same kind of history and travels the same way: whole in a `snapshot`, cut to its tail in an
 * `update`. Clients and servers are kept apart, on the wire (two lists) as in what a tick
 * remembers (two maps), so a server and a client of the same service never cut each other's
 * history. A snapshot with no `servers` key (a source older than weft/server) is sent without one.
 *
 * Every stream starts with a `snapshot`. After that each tick sends it an `update` cut against the
 * last tick it had: the one before, as a rule; an older one when it skipped ticks (below), and
 * then the update carries the seconds since. A stream more than `MAX_LAG_TICKS` behind, or that
 * has had no snapshot yet (the first one failed), gets a whole `snapshot` again. So a page never
 * merges a tail onto a history with a hole before it.
 *
 * One timer serves every connected page: the snapshot is taken once per tick, whatever the number
 * of pages, and serialized once per kind of page — in the steady state once, as the `update` for
 * the pages that had the previous tick; whole only if some page needs it. The timer runs only
 * while at least one page is connected. A page that cannot keep up (its socket buffer is full)
 * skips ticks instead of piling snapshots up in memory; the next one it gets is current. The
 * number of streams is capped, so a runaway tab cannot make the server hold sockets without end.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { MeshSnapshot } from "../index.js";
import { historyTail, type HistoryCarrier, type HistoryPoint } from "./history-delta.js";

/** At most this many pages follow the feed at once; more get 503. */
const MAX_STREAMS = 64;
/** `EventSource` waits this long before reconnecting after the stream drops, ms. */
const RECONNECT_MS = 2000;

/**
 * A page this many ticks behind (its socket full all that time) gets a whole snapshot rather than an
 * update: the ticks' references are kept this long. 64 small maps; an update 64 ticks late carries
 * one point per second since (at most about 65 at the slowest `intervalMs`), against 300 whole.
 */
const MAX_LAG_TICKS = 64;
/** The tick of a stream that has had no snapshot yet: never a tick, so it gets a whole one. */
const NO_TICK = -1;

export class SnapshotStream {
  /** Each stream, with the tick whose snapshot it has had last (or one at least as new). */
  readonly #streams = new Map<ServerResponse, number>();
  /** Per recent tick, oldest first: the `at` of each client's and server's newest history point in its snapshot. */
  readonly #sentUpTo = new Map<number, NewestPoints>();
  readonly #take: () => MeshSnapshot;
  readonly #intervalMs: number;
  readonly #maxLagTicks: number;
  /** The latest tick. */
  #tick = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /**
   * `take` returns the mesh's snapshot (`mesh.snapshot()`); it is called once per tick and once per
   * new stream. `maxLagTicks` (default `MAX_LAG_TICKS`) is there for tests.
   */
  constructor(take: () => MeshSnapshot, intervalMs: number, maxLagTicks = MAX_LAG_TICKS) {
    this.#take = take;
    this.#intervalMs = intervalMs;
    this.#maxLagTicks = maxLagTicks;
  }

  /** Pages following the feed now. */
  get size(): number {
    return this.#streams.size;
  }

  /** Answers `req` with the event stream; `headers` are added to the response (security headers). */
  open(req: IncomingMessage, res: ServerResponse, headers: Readonly<Record<string, string>>): void {
    if (this.#closed || this.#streams.size >= MAX_STREAMS) {
      res.writeHead(503, { ...headers, "content-type": "application/json; charset=utf-8", "retry-after": "5" });
      res.end(
        JSON.stringify({
          error: this.#closed ? "admin server is closing" : `too many live streams (at most ${MAX_STREAMS})`,
        }),
      );
      return;
    }
    res.writeHead(200, {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // Tell proxies (nginx) not to buffer the stream.
      "x-accel-buffering": "no",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    res.write(`retry: ${RECONNECT_MS}\n\n`);
    this.#streams.set(res, NO_TICK);
    res.once("close", () => this.#drop(res));
    try {
      const snapshot = this.#take();
      res.write(sse("snapshot", JSON.stringify(snapshot)));
      // This snapshot is at least as new as the latest tick's, so an update cut against that tick
      // completes it; with no such tick (none yet, or it failed), it stands in for one.
      if (!this.#sentUpTo.has(this.#tick)) this.#remember(this.#tick, snapshot);
      this.#streams.set(res, this.#tick);
    } catch (error) {
      res.write(failure(error));
    }
    // Real time: the ticks are for a browser watching the dashboard, and weft/admin takes no Clock.
    // eslint-disable-next-line no-restricted-globals
    this.#timer ??= setInterval(() => this.#next(), this.#intervalMs).unref();
  }

  /** Ends every stream and stops the timer; later `open` calls answer 503. */
  close(): void {
    this.#closed = true;
    this.#stop();
    for (const res of this.#streams.keys()) res.end();
    this.#streams.clear();
  }

  #next(): void {
    const tick = ++this.#tick;
    try {
      const snapshot = this.#take();
      // What to send, by the tick a stream has had (NO_TICK: a whole snapshot); each made once.
      const events = new Map<number, string>();
      for (const [res, had] of this.#streams) {
        // A page whose socket has not drained yet skips this tick: the next one it gets is current.
        if (res.writableNeedDrain) continue;
        const sentUpTo = this.#sentUpTo.get(had);
        const key = sentUpTo === undefined ? NO_TICK : had;
        let event = events.get(key);
        if (event === undefined) {
          event =
            sentUpTo === undefined
              ? sse("snapshot", JSON.stringify(snapshot))
              : sse("update", JSON.stringify(withTails(snapshot, sentUpTo)));
          events.set(key, event);
        }
        res.write(event);
        this.#streams.set(res, tick);
      }
      this.#remember(tick, snapshot);
    } catch (error) {
      // The pages keep the tick they had: the next update is cut against it.
      const event = failure(error);
      for (const res of this.#streams.keys()) if (!res.writableNeedDrain) res.write(event);
    }
  }

  #remember(tick: number, snapshot: MeshSnapshot): void {
    this.#sentUpTo.set(tick, newestPoints(snapshot));
    for (const old of this.#sentUpTo.keys()) {
      if (old > tick - this.#maxLagTicks) break;
      this.#sentUpTo.delete(old);
    }
  }

  #drop(res: ServerResponse): void {
    this.#streams.delete(res);
    if (this.#streams.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sentUpTo.clear();
  }
}

function sse(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`;
}

function failure(error: unknown): string {
  return sse("failure", JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
}

/** The `at` of the newest history point of each client and of each server, by service. */
interface NewestPoints {
  readonly clients: ReadonlyMap<string, number>;
  readonly servers: ReadonlyMap<string, number>;
}

function newestPoints(snapshot: MeshSnapshot): NewestPoints {
  return { clients: newestOf(snapshot.clients), servers: newestOf(serversOf(snapshot) ?? []) };
}

/** Per service, the `at` of its newest history point. */
function newestOf(carriers: readonly HistoryCarrier<HistoryPoint>[]): Map<string, number> {
  const newest = new Map<string, number>();
  for (const carrier of carriers) {
    const last = carrier.stats.history.at(-1);
    if (last !== undefined) newest.set(carrier.service, last.at);
  }
  return newest;
}

/** `snapshot` with each client's and server's history cut to what a page that had `sentUpTo` lacks. */
function withTails(snapshot: MeshSnapshot, sentUpTo: NewestPoints): MeshSnapshot {
  const servers = serversOf(snapshot);
  const cut = { ...snapshot, clients: tails(snapshot.clients, sentUpTo.clients) };
  return servers === undefined ? cut : { ...cut, servers: tails(servers, sentUpTo.servers) };
}

function tails<C extends HistoryCarrier<HistoryPoint>>(
  carriers: readonly C[],
  sentUpTo: ReadonlyMap<string, number>,
): C[] {
  return carriers.map((carrier) => ({
    ...carrier,
    stats: { ...carrier.stats, history: historyTail(carrier.stats.history, sentUpTo.get(carrier.service)) },
  }));
}

/** The snapshot's servers; undefined from a source whose snapshot has none (older than weft/server). */
function serversOf(snapshot: MeshSnapshot): MeshSnapshot["servers"] | undefined {
  return (snapshot as { readonly servers?: MeshSnapshot["servers"] }).servers;
}
