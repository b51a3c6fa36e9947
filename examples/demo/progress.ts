/**
 * A one-line progress bar on stderr, redrawn in place with `\r`. Output stays on stderr so that
 * `npm run demo > out.txt` keeps only the report; when stderr is not a terminal (CI, a pipe) the
 * bar would be a stream of carriage returns, so only the start and end lines are printed.
 */
import { performance } from "node:perf_hooks";

const BAR_WIDTH = 30;
/** Redraw at most this often: a redraw per request would cost more than some requests. */
const REDRAW_MS = 80;

export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #stream: NodeJS.WriteStream;
  readonly #startMs = performance.now();
  #lastDrawMs = -Infinity;

  constructor(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#label = label;
    this.#total = total;
    this.#stream = stream;
    stream.write(`${label}: started, ${total} requests\n`);
  }

  update(done: number): void {
    if (!this.#stream.isTTY) return;
    const nowMs = performance.now();
    if (nowMs - this.#lastDrawMs < REDRAW_MS && done < this.#total) return;
    this.#lastDrawMs = nowMs;
    const filled = Math.round((done / this.#total) * BAR_WIDTH);
    const bar = "█".repeat(filled) + "░".repeat(BAR_WIDTH - filled);
    const seconds = ((nowMs - this.#startMs) / 1000).toFixed(1);
    this.#stream.write(
      `\r  ${this.#label.padEnd(12)} ${bar} ${String(done).padStart(String(this.#total).length)}/${this.#total}  ${seconds} s`,
    );
  }

  finish(): void {
    // Clear the bar's line so the end line replaces it.
    if (this.#stream.isTTY) this.#stream.write("\r\x1b[2K");
    const seconds = ((performance.now() - this.#startMs) / 1000).toFixed(2);
    this.#stream.write(`${this.#label}: done in ${seconds} s\n`);
  }
}
