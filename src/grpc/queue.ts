/**
 * The messages of a client-streaming or bidi request, from the caller's stream to the transport:
 * an async iterable of serialized messages (the request's one-shot body — never resent). A
 * write's callback runs when the transport takes its message, so the caller's stream feels the
 * backpressure of the HTTP/2 stream, and writes wait while the stack picks an endpoint.
 */
interface Item {
  readonly bytes: Uint8Array;
  readonly taken: (error?: Error | null) => void;
}

export class MessageQueue implements AsyncIterable<Uint8Array> {
  #items: Item[] = [];
  #ended = false;
  #error: Error | undefined = undefined;
  #waiting: ((result: IteratorResult<Uint8Array>) => void) | null = null;
  #waitingReject: ((error: Error) => void) | null = null;

  /** One message; `taken` runs once the transport has it. */
  push(bytes: Uint8Array, taken: (error?: Error | null) => void): void {
    const waiting = this.#waiting;
    if (waiting !== null) {
      this.#waiting = this.#waitingReject = null;
      waiting({ value: bytes, done: false });
      taken();
    } else this.#items.push({ bytes, taken });
  }

  /** No more messages: the transport half-closes the call after the last. */
  end(): void {
    this.#ended = true;
    const waiting = this.#waiting;
    this.#waiting = this.#waitingReject = null;
    waiting?.({ value: undefined, done: true });
  }

  /** The caller's stream failed or was destroyed: the transport cancels the call. */
  fail(error: Error): void {
    if (this.#error !== undefined || this.#ended) return;
    this.#error = error;
    const reject = this.#waitingReject;
    this.#waiting = this.#waitingReject = null;
    reject?.(error);
    // Writes nobody will take: let the caller's stream finish failing.
    for (const item of this.#items) item.taken();
    this.#items = [];
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const item = this.#items.shift();
        if (item !== undefined) {
          item.taken();
          return Promise.resolve({ value: item.bytes, done: false });
        }
        if (this.#error !== undefined) return Promise.reject(this.#error);
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
          this.#waiting = resolve;
          this.#waitingReject = reject;
        });
      },
      // The transport stopped reading (the call ended): writes still queued will never go out.
      return: () => {
        this.fail(new Error("the call has ended"));
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
