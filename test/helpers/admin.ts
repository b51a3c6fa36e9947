/**
 * Readers for weft/admin's outputs, strict enough to hold them to their formats: a small parser of
 * the Prometheus text exposition (0.0.4), and a Server-Sent Events client over node:http.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import type { MeshSnapshot } from "weft";

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Parses exposition text; throws on any line that is neither a HELP/TYPE comment nor a valid sample. */
export function parsePrometheus(text: string): {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
} {
  const samples: Sample[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment !== null) {
      (comment[1] === "HELP" ? help : type).set(comment[2]!, comment[3]!);
      continue;
    }
    const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (head === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const name = head[1]!;
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      rest = rest.slice(1);
      while (!rest.startsWith("}")) {
        const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(rest);
        if (label === null) throw new Error(`bad label in ${JSON.stringify(line)}`);
        rest = rest.slice(label[0].length);
        let value = "";
        for (;;) {
          const c = rest[0];
          if (c === undefined || c === "\n") throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
          if (c === '"') break;
          if (c === "\\") {
            const escaped = rest[1];
            if (escaped === "n") value += "\n";
            else if (escaped === "\\" || escaped === '"') value += escaped;
            else throw new Error(`bad escape \\${escaped} in ${JSON.stringify(line)}`);
            rest = rest.slice(2);
          } else {
            value += c;
            rest = rest.slice(1);
          }
        }
        labels[label[1]!] = value;
        rest = rest.slice(1);
        if (rest.startsWith(",")) rest = rest.slice(1);
      }
      rest = rest.slice(1);
    }
    const value = /^ (NaN|[+-]Inf|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/.exec(rest);
    if (value === null) throw new Error(`bad value in ${JSON.stringify(line)}`);
    samples.push({
      name,
      labels,
      value: value[1] === "+Inf" ? Infinity : value[1] === "-Inf" ? -Infinity : Number(value[1]),
    });
  }
  return { samples, help, type };
}

/** The value of the first sample of `name` whose labels include `labels`. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

export interface EventStream {
  readonly events: { name: string; data: string; at: number }[];
  readonly response: http.IncomingMessage;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  destroy(): void;
}

/** The JSON of a `snapshot` or `update` event. */
export function snapshotOf(event: { readonly data: string }): MeshSnapshot {
  return JSON.parse(event.data) as MeshSnapshot;
}

/** How many history points each client's snapshot in a `snapshot` or `update` event carries, by service. */
export function historyLengths(event: { readonly data: string }): Record<string, number> {
  return Object.fromEntries(snapshotOf(event).clients.map((c) => [c.service, c.stats.history.length]));
}

/** How many history points each server's snapshot in a `snapshot` or `update` event carries, by service. */
export function serverHistoryLengths(event: { readonly data: string }): Record<string, number> {
  return Object.fromEntries((snapshotOf(event).servers ?? []).map((s) => [s.service, s.stats.history.length]));
}

/** Opens an SSE stream and collects its events as they arrive, with their arrival time. */
export function openEvents(url: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: "text/event-stream" } }, (response) => {
      const events: EventStream["events"] = [];
      let buffer = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name !== undefined && data !== undefined) events.push({ name, data, at: performance.now() });
        }
      });
      const ended = new Promise<void>((done) => response.once("end", done).once("close", done));
      resolve({ events, response, ended, destroy: () => req.destroy() });
    });
    req.once("error", reject);
  });
}
