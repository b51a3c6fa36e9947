/**
 * The live feed behind the dashboard: Server-Sent Events, one `snapshot` event at once and then
 * one every `intervalMs`. SSE rather than WebSocket because the feed is one-way, works through
 * plain HTTP/1.1 with no library on either side, and `EventSource` reconnects by itself.
 *
 * One timer serves every connected page: the snapshot is taken and serialized once per tick,
 * whatever the number of pages, and the timer runs only while at least one is connected. A page
 * that cannot keep up (its socket buffer is full) skips ticks instead of piling snapshots up in
 * memory; the next one it gets is current. The number of streams is capped, so a runaway tab
 * cannot make the server hold sockets without end.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** At most this many pages follow the feed at once; more get 503. */
export const MAX_STREAMS = 64;
/** `EventSource` waits this long before reconnecting after the stream drops, ms. */
const RECONNECT_MS = 2000;

export class SnapshotStream {
  readonly #streams = new Set<ServerResponse>();
  readonly #render: () => string;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** `render` returns the snapshot as JSON text (one line: JSON.stringify never emits a newline). */
  constructor(render: () => string, intervalMs: number) {
    this.#render = render;
    this.#intervalMs = intervalMs;
  }

  /** Pages following the feed now. */
  get size(): number {
    return this.#streams.size;
  }

  /** Answers `req` with the event stream; `headers` are added to the response (security headers). */
  open(req: IncomingMessage, res: ServerResponse, headers: Readonly<Record<string, string>>): void {
    if (this.#closed || this.#streams.size >= MAX_STREAMS) {
      res.writeHead(503, { ...headers, "content-type": "application/json; charset=utf-8", "retry-after": "5" });
      res.end(JSON.stringify({ error: this.#closed ? "admin server is closing" : `too many live streams (at most ${MAX_STREAMS})` }));
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
    this.#streams.add(res);
    res.once("close", () => this.#drop(res));
    this.#send(res, this.#event());
    this.#timer ??= setInterval(() => this.#tick(), this.#intervalMs).unref();
  }

  /** Ends every stream and stops the timer; later `open` calls answer 503. */
  close(): void {
    this.#closed = true;
    this.#stop();
    for (const res of this.#streams) res.end();
    this.#streams.clear();
  }

  #tick(): void {
    const event = this.#event();
    for (const res of this.#streams) this.#send(res, event);
  }

  #send(res: ServerResponse, event: string): void {
    // A page whose socket has not drained yet skips this tick: it gets the next, current one.
    if (res.writableNeedDrain) return;
    res.write(event);
  }

  #event(): string {
    let data: string;
    let name = "snapshot";
    try {
      data = this.#render();
    } catch (error) {
      name = "failure";
      data = JSON.stringify({ error: error instanceof Error ? error.message : String(error) });
    }
    return `event: ${name}\ndata: ${data}\n\n`;
  }

  #drop(res: ServerResponse): void {
    this.#streams.delete(res);
    if (this.#streams.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
