import { describe, expect, it } from "vitest";
import { BufferedFetchResponse } from "./fetch-response.js";

const encoder = new TextEncoder();
const init = { status: 201, statusText: "Created", headers: { "content-type": "application/json", "x-a": "1" } };
const JSON_BODY = '{"id":42,"name":"ß"}';

/** The same body both ways: weft's response and Node's own, to compare step by step. */
function both(text = JSON_BODY): [Response, Response] {
  return [new BufferedFetchResponse(encoder.encode(text), init), new Response(encoder.encode(text), init)];
}

/** What a step gives: its value (made comparable), or the error's class. */
async function outcome(step: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    const value = await step();
    if (value instanceof ArrayBuffer) return { bytes: [...new Uint8Array(value)] };
    if (value instanceof Uint8Array) return { bytes: [...value] };
    if (value instanceof Blob) return { blob: value.type, text: await value.text() };
    if (value instanceof ReadableStream) return "stream";
    return value;
  } catch (error) {
    return { threw: (error as Error).constructor.name };
  }
}

/** Reads a stream to its end, as text. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

describe("BufferedFetchResponse", () => {
  it("is a Response with the status, headers and ok of the response it stands for", () => {
    const [mine] = both();
    expect(mine).toBeInstanceOf(Response);
    expect([mine.status, mine.statusText, mine.ok, mine.headers.get("x-a"), mine.bodyUsed]).toEqual([
      201,
      "Created",
      true,
      "1",
      false,
    ]);
  });

  /** Node 20's Response has bytes(); the typings here do not yet. */
  type Step = (r: Response & { bytes(): Promise<Uint8Array> }) => unknown;
  const sequences: Record<string, Step[]> = {
    "text twice": [(r) => r.text(), (r) => r.text()],
    "json then arrayBuffer": [(r) => r.json(), (r) => r.arrayBuffer()],
    "blob then bytes": [(r) => r.blob(), (r) => r.bytes()],
    "bytes then clone": [(r) => r.bytes(), (r) => r.clone()],
    "a reader on body, then text": [(r) => r.body!.getReader() && "reader", (r) => r.text(), (r) => r.clone()],
  };
  for (const [name, steps] of Object.entries(sequences)) {
    it(`reads its body once, as Node's Response does: ${name}`, async () => {
      const [mine, theirs] = both();
      const got: unknown[] = [];
      const want: unknown[] = [];
      for (const step of steps) {
        got.push(await outcome(() => step(mine as Parameters<Step>[0])), mine.bodyUsed);
        want.push(await outcome(() => step(theirs as Parameters<Step>[0])), theirs.bodyUsed);
      }
      expect(got).toEqual(want);
    });
  }

  it("streams its body when `body` is read, and then reads through the stream only", async () => {
    const [mine, theirs] = both();
    expect(mine.body).toBe(mine.body);
    expect(mine.bodyUsed).toBe(false);
    expect(await drain(mine.body!)).toBe(JSON_BODY);
    expect(await drain(theirs.body!)).toBe(JSON_BODY);
    expect([mine.bodyUsed, theirs.bodyUsed]).toEqual([true, true]);
    expect(await outcome(() => mine.text())).toEqual(await outcome(() => theirs.text()));
  });

  it("reads through a stream taken but not yet read, as the standard says", async () => {
    const [mine] = both();
    const stream = mine.body!;
    expect(stream.locked).toBe(false);
    expect(await mine.json()).toEqual({ id: 42, name: "ß" });
    expect(mine.bodyUsed).toBe(true);
  });

  it("clones before it is read (each copy reads the whole body), and refuses once it is", async () => {
    const [mine, theirs] = both();
    const copy = mine.clone();
    expect(copy).toBeInstanceOf(Response);
    expect(copy.status).toBe(201);
    expect(await copy.text()).toBe(JSON_BODY);
    expect(await mine.text()).toBe(JSON_BODY);
    await theirs.text();
    expect(await outcome(() => mine.clone())).toEqual(await outcome(() => theirs.clone()));
    // A stream taken (not read) and cloned: both carry the body.
    const [streamed] = both();
    void streamed.body;
    const twin = streamed.clone();
    expect([await twin.text(), await drain(streamed.body!)]).toEqual([JSON_BODY, JSON_BODY]);
  });

  it("gives bytes() and arrayBuffer() buffers of exactly the body, each its own: a view into a larger buffer is copied, clones never share", async () => {
    // A body that is a view into a larger buffer (a socket read's): never handed over whole.
    const socketRead = encoder.encode(`HTTP/1.1 200 OK\r\n\r\n${JSON_BODY}trailing bytes of the next read`);
    const start = socketRead.indexOf(123); // "{"
    const view = socketRead.subarray(start, start + encoder.encode(JSON_BODY).length);
    const viewed = await new BufferedFetchResponse(view, init).bytes();
    expect(viewed.buffer.byteLength).toBe(viewed.byteLength);
    expect(new TextDecoder().decode(viewed)).toBe(JSON_BODY);
    viewed[0] = 0;
    expect(socketRead[start]).toBe(123);
    const buffer = await new BufferedFetchResponse(view, init).arrayBuffer();
    expect(buffer.byteLength).toBe(view.byteLength);

    // A body with a buffer of its own is handed over as it is.
    const own = encoder.encode(JSON_BODY);
    expect(await new BufferedFetchResponse(own, init).arrayBuffer()).toBe(own.buffer);

    // Clones read the same bytes: each gets a copy, and writing one leaves the other alone.
    const original = new BufferedFetchResponse(encoder.encode(JSON_BODY), init);
    const copy = original.clone();
    const a = await original.bytes();
    a[0] = 0;
    const b = new Uint8Array(await copy.arrayBuffer());
    expect(new TextDecoder().decode(b)).toBe(JSON_BODY);
  });

  it("parses form data and an empty body like Node's Response", async () => {
    const form = new BufferedFetchResponse(encoder.encode("a=1&b=%C3%9F"), {
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    const data = await form.formData();
    expect([data.get("a"), data.get("b")]).toEqual(["1", "ß"]);
    const [empty, emptyTheirs] = both("");
    expect(await outcome(() => empty.json())).toEqual(await outcome(() => emptyTheirs.json()));
  });
});
