/**
 * SnapshotStream's choice of event per page, against stand-in responses whose socket can be made
 * to look full (a real one takes megabytes of unread events to get there).
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { MeshSnapshot } from "../index.js";
import { until } from "../../test/helpers/until.js";
import { SnapshotStream } from "./stream.js";

class FakeResponse extends EventEmitter {
  writableNeedDrain = false;
  readonly events: { name: string; points: number }[] = [];
  /** Per event: the history length of each client it carries, by service. */
  readonly clientPoints: Record<string, number>[] = [];
  /** Per event: the history length of each server it carries, or undefined with no `servers` key. */
  readonly serverPoints: (Record<string, number> | undefined)[] = [];
  writeHead(): this {
    return this;
  }
  write(chunk: string): boolean {
    const event = /^event: (.*)\ndata: (.*)\n\n$/.exec(chunk);
    if (event !== null) {
      type Carrier = { service: string; stats: { history: unknown[] } };
      const data = JSON.parse(event[2]!) as { clients?: Carrier[]; servers?: Carrier[] };
      this.events.push({ name: event[1]!, points: data.clients?.[0]?.stats.history.length ?? 0 });
      this.clientPoints.push(Object.fromEntries((data.clients ?? []).map((c) => [c.service, c.stats.history.length])));
      this.serverPoints.push(
        data.servers === undefined
          ? undefined
          : Object.fromEntries(data.servers.map((s) => [s.service, s.stats.history.length])),
      );
    }
    return true;
  }
  end(): void {
    this.emit("close");
  }
}

const T0 = Date.UTC(2026, 0, 1);
/**
 * A mesh of one client whose history grows a second every 4 takes, 100 points to begin with; counts
 * its takes. With `servers`: a second client, `orders`, and a server of each name whose histories
 * end 30 s after (`catalog`) and 30 s before (`orders`) the clients' — so a tail cut against the
 * other side's newest point would be long; without: a snapshot with no `servers` key at all (a
 * source older than weft/server).
 */
function source(servers = false): { take: () => MeshSnapshot; readonly takes: number } {
  let takes = 0;
  const history = (length: number, newest: number) =>
    Array.from({ length }, (_, i) => ({ at: T0 + (newest - length + i + 1) * 1000, requests: i }));
  return {
    take: () => {
      const newest = 100 + Math.floor(takes++ / 4);
      const clients = [{ service: "catalog", stats: { history: history(newest, newest) } }];
      if (!servers) return { takenAt: T0 + newest * 1000, clients } as unknown as MeshSnapshot;
      clients.push({ service: "orders", stats: { history: history(newest, newest) } });
      const serverList = [
        { service: "catalog", stats: { history: history(50, newest + 30) } },
        { service: "orders", stats: { history: history(60, newest - 30) } },
      ];
      return { takenAt: T0 + newest * 1000, clients, servers: serverList } as unknown as MeshSnapshot;
    },
    get takes() {
      return takes;
    },
  };
}

const streams: SnapshotStream[] = [];
afterEach(() => {
  for (const stream of streams.splice(0)) stream.close();
});

function open(stream: SnapshotStream): FakeResponse {
  const res = new FakeResponse();
  stream.open({ method: "GET" } as IncomingMessage, res as unknown as ServerResponse, {});
  return res;
}

describe("SnapshotStream", () => {
  it("takes the snapshot once per tick for every page, and sends each page a whole one first, then updates", async () => {
    const mesh = source();
    const stream = new SnapshotStream(mesh.take, 50);
    streams.push(stream);
    const pages = [open(stream), open(stream), open(stream)];
    await until(() => pages[0]!.events.length >= 4, "three ticks", 5_000, 5);
    for (const page of pages) {
      expect(page.events[0]).toEqual({ name: "snapshot", points: 100 });
      expect(page.events.slice(1).every((e) => e.name === "update" && e.points <= 2)).toBe(true);
    }
    expect(mesh.takes).toBe(pages.length + pages[0]!.events.length - 1);
  });

  it("sends a page that skipped ticks (its socket not drained) an update with every second since the tick it had", async () => {
    const mesh = source();
    const stream = new SnapshotStream(mesh.take, 50);
    streams.push(stream);
    const slow = open(stream);
    const steady = open(stream);
    await until(() => slow.events.length >= 2, "an update", 5_000, 5);
    slow.writableNeedDrain = true;
    const skipped = slow.events.length;
    const takes = mesh.takes;
    // Two ticks a second: 12 ticks move the history on by 3 seconds at least.
    await until(() => mesh.takes >= takes + 12, "twelve ticks", 5_000, 5);
    expect(slow.events).toHaveLength(skipped);
    slow.writableNeedDrain = false;
    await until(() => slow.events.length >= skipped + 2, "two more events", 5_000, 5);
    expect(slow.events[skipped]!.name).toBe("update");
    expect(slow.events[skipped]!.points).toBeGreaterThanOrEqual(4);
    expect(slow.events[skipped]!.points).toBeLessThanOrEqual(6);
    expect(slow.events[skipped + 1]!.name).toBe("update");
    expect(steady.events.slice(1).map((e) => e.name)).toEqual(steady.events.slice(1).map(() => "update"));
    expect(Math.max(...steady.events.slice(1).map((e) => e.points))).toBe(2);
  });

  it("sends a page more than maxLagTicks behind a whole snapshot", async () => {
    const mesh = source();
    const stream = new SnapshotStream(mesh.take, 50, 3);
    streams.push(stream);
    const slow = open(stream);
    await until(() => slow.events.length >= 2, "an update", 5_000, 5);
    slow.writableNeedDrain = true;
    const skipped = slow.events.length;
    const takes = mesh.takes;
    await until(() => mesh.takes >= takes + 4, "four ticks", 5_000, 5);
    slow.writableNeedDrain = false;
    await until(() => slow.events.length >= skipped + 2, "two more events", 5_000, 5);
    expect(slow.events[skipped]!.name).toBe("snapshot");
    expect(slow.events[skipped]!.points).toBeGreaterThan(100);
    expect(slow.events[skipped + 1]!.name).toBe("update");
  });

  it("stops taking snapshots when the last page goes, and starts over with a whole snapshot", async () => {
    const mesh = source();
    const stream = new SnapshotStream(mesh.take, 50);
    streams.push(stream);
    const first = open(stream);
    await until(() => first.events.length >= 2, "an update", 5_000, 5);
    first.end();
    const takes = mesh.takes;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(mesh.takes).toBe(takes);
    const second = open(stream);
    await until(() => second.events.length >= 2, "an update", 5_000, 5);
    expect(second.events.map((e) => e.name).slice(0, 2)).toEqual(["snapshot", "update"]);
  });

  it("cuts the servers' histories to their tails like the clients', apart from a client of the same name", async () => {
    const mesh = source(true);
    const stream = new SnapshotStream(mesh.take, 50);
    streams.push(stream);
    const page = open(stream);
    await until(() => page.events.length >= 6, "five updates", 5_000, 5);
    expect(page.events[0]!.name).toBe("snapshot");
    expect(page.clientPoints[0]).toEqual({ catalog: 100, orders: 100 });
    expect(page.serverPoints[0]).toEqual({ catalog: 50, orders: 60 });
    for (let i = 1; i < page.events.length; i++) {
      expect(page.events[i]!.name).toBe("update");
      expect(Object.keys(page.serverPoints[i]!)).toEqual(["catalog", "orders"]);
      for (const points of [...Object.values(page.clientPoints[i]!), ...Object.values(page.serverPoints[i]!)]) {
        expect(points).toBeGreaterThanOrEqual(1);
        expect(points).toBeLessThanOrEqual(2);
      }
    }
  });

  it("sends a snapshot without servers (a source older than weft/server) without a servers key", async () => {
    const stream = new SnapshotStream(source(false).take, 50);
    streams.push(stream);
    const page = open(stream);
    await until(() => page.events.length >= 3, "two updates", 5_000, 5);
    expect(page.events.map((e) => e.name)).toEqual(["snapshot", ...page.events.slice(1).map(() => "update")]);
    expect(page.serverPoints.every((s) => s === undefined)).toBe(true);
  });
});
