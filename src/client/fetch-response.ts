/**
 * The `Response` that `client.fetch()` returns when the body has already arrived (most small
 * ones): a real `Response` — `instanceof Response`, real `Headers`, the same methods and errors —
 * that reads its bytes straight from memory.
 *
 * Why a subclass: Node 20's `Response` makes a web `ReadableStream` (and transfers it) for any body
 * given to its constructor, bytes included: ~19 µs of a call's CPU here, four times what weft's
 * whole stack costs on a socket. Constructed with no body, it costs ~1 µs; the bytes are kept
 * beside it and handed to `text()` / `json()` / `arrayBuffer()` / `blob()` without a stream. A
 * stream is made only when `body` is read; `bodyUsed` turns true once the body is read, either
 * way, and a body whose stream is held by a reader is unusable, as the standard says.
 */
const decoder = new TextDecoder();

/** undici's words for a body read twice, so a caller's check of the message behaves alike. */
const unusable = (): TypeError => new TypeError("Body is unusable: Body has already been read");

/** The body's members, which this class defines itself (the DOM typings declare them as properties). */
type BodyMembers = "body" | "bodyUsed" | "text" | "json" | "arrayBuffer" | "blob" | "formData" | "bytes" | "clone";
const ResponseWithoutBody = Response as unknown as new (body: null, init: ResponseInit) => Omit<Response, BodyMembers>;

export class BufferedFetchResponse extends ResponseWithoutBody implements Response {
  /** The body, until it is used (read by a method, or pulled from `body`). */
  #bytes: Uint8Array | null;
  #stream: ReadableStream<Uint8Array> | null = null;
  /**
   * The bytes may be handed to the caller as they are: they fill their whole `ArrayBuffer` (a
   * body joined from its chunks has one of its own; a single chunk is usually a view into the
   * socket's read buffer, whose other bytes are not this body) and no clone shares them.
   */
  #handOver: boolean;

  constructor(bytes: Uint8Array, init: ResponseInit) {
    super(null, init);
    this.#bytes = bytes;
    this.#handOver = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;
  }

  get body(): ReadableStream<Uint8Array> {
    // Pulled only when someone reads it (highWaterMark 0): reading is what uses the body.
    this.#stream ??= new ReadableStream<Uint8Array>(
      {
        pull: (controller) => {
          const bytes = this.#bytes;
          this.#bytes = null;
          if (bytes !== null && bytes.byteLength > 0) controller.enqueue(bytes);
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    return this.#stream;
  }

  get bodyUsed(): boolean {
    return this.#bytes === null;
  }

  async text(): Promise<string> {
    return decoder.decode(this.#consume());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async bytes(): Promise<Uint8Array> {
    // A Uint8Array of its own, whose buffer is exactly the body, as the standard's is.
    const handOver = this.#handOver;
    const bytes = this.#consume();
    return handOver ? bytes : bytes.slice();
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const handOver = this.#handOver;
    const bytes = this.#consume();
    if (handOver) return bytes.buffer as ArrayBuffer;
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    return new Blob([this.#consume()], { type: this.headers.get("content-type") ?? "" });
  }

  async formData(): Promise<FormData> {
    // Rare on a client: the standard parser, over the bytes.
    return new Response(this.#consume(), { headers: this.headers }).formData();
  }

  clone(): Response {
    const bytes = this.#usable();
    const copy = new BufferedFetchResponse(bytes, {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
    });
    // Both read the same bytes now: neither may give them away to be written.
    this.#handOver = false;
    copy.#handOver = false;
    if (this.url !== "") Object.defineProperty(copy, "url", { value: this.url });
    return copy;
  }

  /** The bytes, once: the body is used from now on. */
  #consume(): Uint8Array {
    const bytes = this.#usable();
    this.#bytes = null;
    return bytes;
  }

  /** The standard's "unusable": read already, or its stream is held by a reader. */
  #usable(): Uint8Array {
    if (this.#bytes === null || this.#stream?.locked === true) throw unusable();
    return this.#bytes;
  }
}
