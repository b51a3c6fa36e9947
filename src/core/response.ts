/**
 * A response whose body is already in memory: what in-memory services (tests, benchmarks,
 * fallbacks) and buffering transports return.
 */
import { BodyUsedError } from "./errors.js";
import type { MeshResponse, ResponseHeaderMap } from "./types.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Statuses that never carry a body. */
export function isNullBodyStatus(status: number): boolean {
  return status === 101 || status === 103 || status === 204 || status === 205 || status === 304;
}

export class BufferedResponse implements MeshResponse {
  readonly status: number;
  readonly headers: ResponseHeaderMap;
  #content: string | Uint8Array | null;
  #used = false;
  #stream: ReadableStream<Uint8Array> | null = null;

  constructor(status: number, content: string | Uint8Array | null = null, headers: ResponseHeaderMap = {}) {
    this.status = status;
    this.headers = headers;
    this.#content = content;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream !== null) return this.#stream;
    if (this.#content === null || isNullBodyStatus(this.status)) return null;
    const bytes = this.#take();
    this.#stream = new ReadableStream<Uint8Array>({
      start(controller) {
        if (bytes.byteLength > 0) controller.enqueue(bytes);
        controller.close();
      },
    });
    return this.#stream;
  }

  async text(): Promise<string> {
    const content = this.#content;
    this.#markUsed();
    if (content === null) return "";
    return typeof content === "string" ? content : decoder.decode(content);
  }

  async json<T = unknown>(): Promise<T> {
    return JSON.parse(await this.text()) as T;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async dump(): Promise<void> {
    this.#used = true;
  }

  onBodyEnd(callback: () => void): void {
    // The body is in memory: nothing to wait for.
    callback();
  }

  #take(): Uint8Array {
    const content = this.#content;
    this.#markUsed();
    if (content === null) return new Uint8Array(0);
    return typeof content === "string" ? encoder.encode(content) : content;
  }

  #markUsed(): void {
    if (this.#used) throw new BodyUsedError();
    this.#used = true;
  }
}
