/**
 * One run at a time, none lost: a task (re-reading a file, say) that a watch event, a poll and a
 * caller may all ask for at once. A request while it runs asks for one more run after it — any
 * number of requests meanwhile coalesce into that one — so the last change is always read.
 */
export class SerialTask {
  readonly #task: () => Promise<void>;
  readonly #stopped: () => boolean;
  #running = false;
  #again = false;

  /** `stopped`: checked before each extra run (a closed reader stops re-running). */
  constructor(task: () => Promise<void>, stopped: () => boolean) {
    this.#task = task;
    this.#stopped = stopped;
  }

  /**
   * Runs the task now, or after the run in progress. Resolves true for the caller whose call did
   * the runs (once they are done), false at once for one that joined a run in progress.
   */
  async run(): Promise<boolean> {
    if (this.#running) {
      this.#again = true;
      return false;
    }
    this.#running = true;
    try {
      do {
        this.#again = false;
        await this.#task();
      } while (this.#again && !this.#stopped());
    } finally {
      this.#running = false;
    }
    return true;
  }
}
