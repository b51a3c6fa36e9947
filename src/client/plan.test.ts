import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { AvailabilityGate, Endpoint } from "../core/endpoint.js";
import { ErrorCodes, InvalidOptionsError } from "../core/errors.js";
import { fail, isPlainObject } from "../core/validate.js";
import type { Layer, MeshRequest, Service } from "../core/types.js";
import { staticDiscovery } from "../discovery/static.js";
import { fakeClock } from "../testing/fake-clock.js";
import { mockService } from "../testing/mock-service.js";
import { Client, type ClientParts } from "./client.js";
import { checkDefaults, mergeOptions, normalizeOptions, optionKeys, type ClientConfig } from "./options.js";
import { planOptions, STACK_PLAN, type PlanEntry } from "./plan.js";

const URLS = ["http://127.0.0.1:1", "http://127.0.0.1:2"];
const open: Client[] = [];
afterEach(async () => {
  for (const client of open.splice(0)) await client.close();
});

/** What a mesh lends a client, made by hand: the transport and resolver of its own, unshared. */
function partsFor(config: ClientConfig): ClientParts {
  const transport = config.transport.create();
  const warnings: string[] = [];
  const resolver = config.discovery.create({
    clock: config.clock,
    random: config.random,
    warn: (m) => warnings.push(m),
  });
  return {
    transport,
    resolver,
    warn: (m) => warnings.push(m),
    origins: { hold: () => {}, release: () => {} },
    onClose: async () => {
      await resolver.close();
      await transport.close();
    },
  };
}

/**
 * A toy policy, written the way a new one is added: its own option (validated by its own
 * normaliser, merged by its rule), a layer at its place, a snapshot section, an availability gate,
 * discovery updates and a close — and nothing else of the client edited.
 */
interface StampConfig {
  readonly header: string;
  readonly holdOut: readonly string[];
}
function stampEntry(log: string[]): PlanEntry {
  return {
    role: "stamp",
    why: "a toy: stamps each call once, above retry, so a resend carries the same stamp",
    options: {
      stamp: {
        merge: "shallow",
        normalize: (value, at): StampConfig | false => {
          if (value === undefined || value === false) return false;
          if (!isPlainObject(value)) fail(at, value, "{ header, holdOut? } or false");
          if (typeof value.header !== "string" || value.header === "")
            fail(`${at}.header`, value.header, "a header name");
          const holdOut = value.holdOut ?? [];
          if (!Array.isArray(holdOut) || holdOut.some((u) => typeof u !== "string"))
            fail(`${at}.holdOut`, holdOut, "an array of endpoint URLs");
          return Object.freeze({ header: value.header, holdOut: [...(holdOut as string[])] });
        },
      },
    },
    snapshotKey: "stamp",
    build: ({ config, changed }) => {
      const stamp = config.options.stamp as StampConfig | false;
      if (stamp === false) return null;
      let stamped = 0;
      let known = 0;
      const held = new Set(stamp.holdOut);
      const layer: Layer = (next) => (req) => {
        stamped++;
        return next({ ...req, headers: { ...req.headers, [stamp.header]: String(stamped) } });
      };
      const gate: AvailabilityGate = {
        name: "stamp",
        panicOverrides: true,
        isAvailable: (e: Endpoint) => !held.has(e.url),
      };
      return {
        layers: [layer],
        gate,
        snapshot: () => ({ stamped, known, held: [...held] }),
        describe: (e) => (held.has(e.url) ? { state: "ejected" } : {}),
        setEndpoints: (all) => {
          known = all.length;
          log.push(`endpoints ${all.length}`);
        },
        close: () => {
          log.push("closed");
          held.clear();
          changed();
        },
      };
    },
  };
}

/** The default plan with the toy entry just above retry. */
function planWith(entry: PlanEntry): readonly PlanEntry[] {
  const at = STACK_PLAN.findIndex((e) => e.role === "retry");
  return [...STACK_PLAN.slice(0, at), entry, ...STACK_PLAN.slice(at)];
}

describe("the stack plan", () => {
  it("adds a toy policy with one plan entry: its option validated, its layer in place, its snapshot, gate and close", async () => {
    const log: string[] = [];
    const plan = planWith(stampEntry(log));
    const seen: Array<{ url: string; stamp: string | undefined }> = [];
    const transport = mockService((req) => {
      seen.push({ url: req.endpoint?.url ?? "", stamp: req.headers["x-stamp"] as string | undefined });
      return { status: 200, body: "ok" };
    });
    const options = {
      service: "toy",
      discovery: staticDiscovery(URLS),
      transport,
      clock: fakeClock(),
      stamp: { header: "x-stamp", holdOut: [URLS[1]] },
    };

    // Its option is a client option like any other: unknown to the default plan, checked by its normaliser.
    expect(optionKeys(plan)).toContain("stamp");
    expect(optionKeys()).not.toContain("stamp");
    expect(() => normalizeOptions(options)).toThrow(/unknown option stamp/);
    expect(() => normalizeOptions({ ...options, stamp: { header: 7 } }, plan)).toThrow(
      new InvalidOptionsError("stamp.header", "invalid option stamp.header: got 7; expected a header name"),
    );
    expect(() => checkDefaults({ stamp: { header: "" } }, plan)).toThrow(/invalid option defaults\.stamp\.header/);
    // Its merge rule applies to a mesh's defaults: objects merge one level deep.
    expect(
      mergeOptions(
        { stamp: { header: "x-a", holdOut: ["u"] } } as Record<string, unknown>,
        { stamp: { header: "x-b" } },
        plan,
      ),
    ).toEqual({
      stamp: { header: "x-b", holdOut: ["u"] },
    });

    const config = normalizeOptions(options, plan);
    const client = new Client(config, partsFor(config), plan);
    open.push(client);
    // Its layer sits where the entry sits: above retry, below the limits.
    const roles = client.stack.roles;
    expect(roles.indexOf("stamp")).toBe(roles.indexOf("retry") - 1);
    expect(roles.indexOf("stamp")).toBeGreaterThan(roles.indexOf("deadline"));

    for (let i = 0; i < 4; i++) expect((await client.request({ path: "/" })).status).toBe(200);
    // The gate held the second endpoint out: every call went to the first, each stamped once.
    expect(seen).toEqual([1, 2, 3, 4].map((n) => ({ url: URLS[0], stamp: String(n) })));
    const snapshot = client.snapshot() as unknown as Record<string, unknown> & ReturnType<Client["snapshot"]>;
    expect(snapshot.stamp).toEqual({ stamped: 4, known: 2, held: [URLS[1]] });
    expect(snapshot.endpoints.map((e) => e.state)).toEqual(["healthy", "ejected"]);
    expect(log).toEqual(["endpoints 2"]);

    await client.close();
    expect(log).toEqual(["endpoints 2", "closed"]);
  });

  it("leaves a toy policy that is off out of the stack and the snapshot", async () => {
    const plan = planWith(stampEntry([]));
    const config = normalizeOptions(
      { service: "toy", discovery: staticDiscovery(URLS), transport: mockService(() => ({ status: 200 })) },
      plan,
    );
    const client = new Client(config, partsFor(config), plan);
    open.push(client);
    expect(client.stack.roles).not.toContain("stamp");
    expect("stamp" in client.snapshot()).toBe(false);
  });

  it("refuses two entries that claim one option, and an entry that claims a client option", () => {
    const a = stampEntry([]);
    const b = { ...stampEntry([]), role: "stamp-2" };
    expect(() => planOptions([a, b])).toThrow(
      'stack plan: option "stamp" is claimed by two entries (the second: "stamp-2")',
    );
    const clash: PlanEntry = { ...a, options: { service: { merge: "replace", normalize: (v) => v } } };
    expect(() => optionKeys([clash])).toThrow('stack plan: option "service" belongs to the client itself');
  });

  it("has unique roles, and every layer the default client builds is an entry's, in plan order", () => {
    const roles = STACK_PLAN.map((e) => e.role);
    expect(new Set(roles).size).toBe(roles.length);
    const config = normalizeOptions({
      service: "all",
      discovery: staticDiscovery(URLS),
      transport: mockService(() => ({ status: 200 })),
      fallback: () => ({ status: 503 }),
      coalesce: true,
      rateLimit: { perSecond: 100 },
      concurrency: { limit: 10 },
      use: [(req: MeshRequest, next: Service) => next(req)],
    });
    const client = new Client(config, partsFor(config));
    open.push(client);
    const built = client.stack.roles;
    expect(built.filter((r) => !roles.includes(r))).toEqual([]);
    expect([...built].sort((x, y) => roles.indexOf(x) - roles.indexOf(y))).toEqual(built);
  });

  it("is the table in docs/architecture.md: the same roles in the same order, each with the same why", () => {
    const doc = readFileSync(new URL("../../docs/architecture.md", import.meta.url), "utf8");
    const start = doc.indexOf("| role | kind | why there |");
    expect(start).toBeGreaterThan(0);
    const rows = doc
      .slice(start)
      .split("\n")
      .slice(2)
      .filter((line, i, lines) => line.startsWith("|") && lines.slice(0, i).every((l) => l.startsWith("|")));
    const cells = rows.map((row) =>
      row
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim().replaceAll("`", "")),
    );
    expect(cells.map(([role]) => role)).toEqual(STACK_PLAN.map((e) => e.role));
    for (const [role, kind, why] of cells) {
      const entry = STACK_PLAN.find((e) => e.role === role);
      expect({ role, why }).toEqual({ role, why: entry?.why.replaceAll("`", "") });
      expect(["layer", "part"]).toContain(kind);
    }
  });

  it("rejects an unknown option with the keys the plan allows", () => {
    expect(() => normalizeOptions({ service: "s", discovery: staticDiscovery(URLS), retires: 3 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_OPTIONS, message: expect.stringMatching(/retires/) }),
    );
  });
});
