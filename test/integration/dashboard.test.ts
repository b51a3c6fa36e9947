/**
 * The admin dashboard end to end, in real headless Chromium: the demo's replicas (child processes)
 * and the demo's mesh (`startDashboard`, exactly what `npm run demo -- --dashboard` runs), the page
 * following the live event stream. A replica frozen with SIGSTOP must turn to "ejected" on the
 * page, in the client whose attempt timeout makes outlier detection eject it. A `weft/server`
 * inbound in the mesh, serving real requests on a real node:http server, gets a server card whose
 * state turns to "draining" when `drain()` begins and to "closed" when it ends. A client with
 * routes shows its routes table and config version: the routes in code, or the version a real
 * config file holds, with a rejected version's reason.
 *
 * Screenshots: always `artifacts/dashboard.png`; with WEFT_SCREENSHOT_DIR set, also
 * `$WEFT_SCREENSHOT_DIR/admin-dashboard.png` (taken after the charts have filled up for a while).
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMesh, fileConfig, seededRandom, staticDiscovery, type Client, type RoutingSnapshot } from "weft";
import { serveAdmin } from "weft/admin";
import { inbound } from "weft/server";
import { DEMO_CLIENTS, startDashboard } from "../../examples/demo/dashboard.js";
import { ReplicaSet, type Replica } from "../../examples/demo/replicas.js";
import { launchChromium, skipChromium, type BrowserGlobals } from "../helpers/chromium.js";
import { parsePrometheus, valueOf } from "../helpers/admin.js";
import { defer, scoped, server } from "../helpers/scope.js";
import { until } from "../helpers/until.js";

const ARTIFACTS = "artifacts";
const DOCS_DIR = process.env.WEFT_SCREENSHOT_DIR;
/** With a docs screenshot asked for, let the charts fill this long before freezing a replica. */
const DOCS_WARMUP_MS = 45_000;
const EJECTED_WITHIN_MS = 20_000;

describe.skipIf(skipChromium)("admin dashboard in headless Chromium", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens `url` and waits for the live stream; `errors` collects script errors and CSP violations. */
  async function open(url: string): Promise<Page & { readonly errors: string[] }> {
    const page = Object.assign(await browser.newPage({ viewport: { width: 1440, height: 900 } }), {
      errors: [] as string[],
    });
    defer(() => page.close());
    page.on("pageerror", (error) => page.errors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") page.errors.push(message.text());
    });
    await page.goto(url);
    await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
    return page;
  }

  it(
    "lists the demo's clients and endpoints, and turns a frozen replica's row to ejected",
    async () => {
      const replicaSet = new ReplicaSet();
      defer(() => replicaSet.stop());
      const replicas = await replicaSet.start(["healthy", "slow", "flaky"]);
      const dashboard = await startDashboard(replicas);
      defer(() => dashboard.stop());
      const page = await open(dashboard.url);

      // One card per demo client, in order, each listing the replicas it calls.
      await page.waitForFunction((n) => {
        const { document } = globalThis as unknown as BrowserGlobals;
        return document.querySelectorAll("section.card[data-service]").length === n;
      }, DEMO_CLIENTS.length);
      const cards = await page.evaluate(() => {
        const { document } = globalThis as unknown as BrowserGlobals;
        return [...document.querySelectorAll("section.card")].map((s) => ({
          service: s.getAttribute("data-service"),
          title: s.querySelector("h2")?.textContent,
          endpoints: [...s.querySelectorAll("tr.endpoint")].map((tr) => tr.getAttribute("data-endpoint")),
        }));
      });
      expect(cards).toEqual(
        DEMO_CLIENTS.map((c) => ({
          service: c.service,
          title: c.service,
          endpoints: c.behaviours.map((b) => byBehaviour(replicas, b).url),
        })),
      );

      // Live figures: the load shows up as a request rate and a drawn chart.
      await page.waitForFunction(() => {
        const { document } = globalThis as unknown as BrowserGlobals;
        const rate = document.querySelector('[data-service="catalog"] [data-stat="rps"]')?.textContent ?? "–";
        const area =
          document.querySelector('[data-service="catalog"] [data-chart="rate"] path.area-rate')?.getAttribute("d") ??
          "";
        return rate !== "–" && Number(rate) > 0 && area.includes("L");
      });
      // After the first snapshot the page gets updates carrying a second or two of history each:
      // the charts grow as it merges them.
      const p50Points = (atLeast: number): number | false => {
        const { document } = globalThis as unknown as BrowserGlobals;
        const d =
          document.querySelector('[data-service="catalog"] [data-chart="latency"] path.line-p50')?.getAttribute("d") ??
          "";
        const points = d.split(/[ML]/).length - 1;
        return points >= atLeast ? points : false;
      };
      const drawn = (await page.evaluate(p50Points, 0)) as number;
      await page.waitForFunction(p50Points, drawn + 2);

      if (DOCS_DIR !== undefined) {
        const start = Date.now();
        const warm = (until: number): boolean => {
          const { document } = globalThis as unknown as BrowserGlobals;
          return Number(document.body.getAttribute("data-taken-at")) >= until;
        };
        await page.waitForFunction(warm, start + DOCS_WARMUP_MS, {
          timeout: DOCS_WARMUP_MS + 10_000,
        });
      }

      const frozen = byBehaviour(replicas, "slow");
      const healthy = byBehaviour(replicas, "healthy");
      const row = (url: string): string => `section.card[data-service="inventory"] tr.endpoint[data-endpoint="${url}"]`;
      await page.waitForSelector(`${row(frozen.url)}[data-state="healthy"]`);
      expect(await page.getAttribute(row(frozen.url), "class")).toContain("tone-healthy");

      process.kill(frozen.pid, "SIGSTOP");
      // Runs before dashboard.stop() and replicaSet.stop() (cleanup is last-in, first-out).
      defer(async () => continueProcess(frozen.pid));

      await page.waitForSelector(`${row(frozen.url)}[data-state="ejected"]`, { timeout: EJECTED_WITHIN_MS });
      const classes = await page.getAttribute(row(frozen.url), "class");
      expect(classes).toContain("tone-ejected");
      expect(classes).not.toContain("tone-healthy");
      const colour = (selector: string): Promise<string> =>
        page.evaluate((s) => {
          const { document, getComputedStyle } = globalThis as unknown as BrowserGlobals;
          const tr = document.querySelector(s);
          return tr === null ? "missing" : getComputedStyle(tr).backgroundColor;
        }, selector);
      expect(await colour(row(frozen.url))).toBe("rgb(255, 235, 233)");
      expect(await colour(row(healthy.url))).not.toBe(await colour(row(frozen.url)));
      expect(await page.textContent(`${row(frozen.url)} .pill-state`)).toBe("ejected");
      expect(await page.textContent(`${row(frozen.url)} .note`)).toMatch(/back in \d+ s/);

      expect(page.errors).toEqual([]);

      await mkdir(ARTIFACTS, { recursive: true });
      const shot = await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
      expect(shot.length).toBeGreaterThan(10_000);
      if (DOCS_DIR !== undefined) {
        await mkdir(DOCS_DIR, { recursive: true });
        await page.screenshot({ path: join(DOCS_DIR, "admin-dashboard.png"), fullPage: true });
      }
    },
    DOCS_DIR === undefined ? 40_000 : 40_000 + DOCS_WARMUP_MS + 10_000,
  );

  it("renders a hostile service name and zone as text, and forwards its ?token= to the stream", async () => {
    const upstream = await server();
    const name = '<img src=x onerror="window.__pwned=1">"catalog"';
    const zone = "<script>window.__pwned=2</script>";
    const mesh = scoped(createMesh());
    mesh.client(name, { discovery: staticDiscovery([{ url: upstream.url, zone }]) });
    scoped(inbound({ service: name, mesh, authz: { rules: [{ paths: ["/public"] }] } }));
    const token = "page-token_123";
    const admin = scoped(await serveAdmin(mesh, { token, intervalMs: 200 }));

    const page = await open(`${admin.url}?token=${token}`);
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.waitForSelector("section.card tr.endpoint");
    await page.waitForSelector("section.card.server[data-server]");
    const seen = await page.evaluate(() => {
      const { document, __pwned } = globalThis as unknown as BrowserGlobals;
      return {
        service: document.querySelector("section.card")?.getAttribute("data-service"),
        title: document.querySelector("section.card h2")?.textContent,
        zone: document.querySelector("tr.endpoint td:nth-child(2)")?.textContent,
        server: document.querySelector("section.card.server")?.getAttribute("data-server"),
        serverTitle: document.querySelector("section.card.server h2")?.textContent,
        injected: document.querySelectorAll("main img, main script, main iframe, main [onerror]").length,
        pwned: __pwned,
      };
    });
    expect(seen).toEqual({
      service: name,
      title: name,
      zone,
      server: name,
      serverTitle: name,
      injected: 0,
      pwned: undefined,
    });
    expect(dialogs).toEqual([]);
    expect(page.errors).toEqual([]);
  });
  it("shows an inbound server's card with its traffic, turns it to draining when drain() begins and to closed when it ends", async () => {
    const mesh = scoped(createMesh());
    const orders = scoped(
      inbound({ service: "orders", mesh, shed: { limit: 16 }, drain: { delayMs: 100, graceMs: 8_000 } }),
    );
    // One request is held open, so the drain waits for it and the card stays "draining" until the
    // test lets it go: nothing here depends on how fast the page polls.
    let release = (): void => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const httpServer = http.createServer(
      orders.handler(async (req, res) => {
        if (req.url === "/slow") await held;
        res.end("ok");
      }),
    );
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    orders.attach(httpServer);
    defer(
      async () =>
        new Promise<void>((resolve) => {
          release();
          httpServer.closeAllConnections();
          if (httpServer.listening) httpServer.close(() => resolve());
          else resolve();
        }),
    );
    const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    // The mesh also calls orders, through a client of the same name: the page keeps both apart.
    const client = mesh.client("orders", { discovery: staticDiscovery([url]) });
    let loading = true;
    const load = (async () => {
      while (loading) {
        await (await client.request({ path: "/v1/orders" })).text();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    defer(async () => {
      loading = false;
      await load.catch(() => undefined);
    });
    const admin = scoped(await serveAdmin(mesh, { intervalMs: 100 }));
    const page = await open(admin.url);

    const card = 'section.card.server[data-server="orders"]';
    await page.waitForSelector(`${card}[data-state="serving"]`);
    // Live figures from real requests: a request rate, 100 % success, a chart of two seconds at
    // least (the area is its points, then two to the baseline: 4 commands for 2 points).
    await page.waitForFunction((selector) => {
      const { document } = globalThis as unknown as BrowserGlobals;
      const rate = document.querySelector(`${selector} [data-stat="rps"]`)?.textContent ?? "–";
      const area = document.querySelector(`${selector} [data-chart="rate"] path.area-rate`)?.getAttribute("d") ?? "";
      return rate !== "–" && Number(rate) > 0 && area.split(/[ML]/).length - 1 >= 4;
    }, card);
    loading = false;
    await load;
    const serving = await page.evaluate((selector) => {
      const { document, getComputedStyle } = globalThis as unknown as BrowserGlobals;
      const root = document.querySelector(selector)!;
      const stat = (key: string): string | null | undefined => root.querySelector(`[data-stat="${key}"]`)?.textContent;
      const pill = root.querySelector(".pill-state")!;
      return {
        clientCards: document.querySelectorAll("section.card[data-service]").length,
        serverCards: document.querySelectorAll("section.card.server").length,
        title: root.querySelector("h2")?.textContent,
        state: pill.textContent,
        colour: getComputedStyle(pill).backgroundColor,
        success: stat("success"),
        limit: stat("limit"),
        mode: root.querySelector('[data-stat="limit"]')?.getAttribute("data-mode"),
        shedLow: root.querySelector('[data-count="shed.low"]')?.textContent,
        shedShown: !(root.querySelector('[data-group="shed"]') as unknown as { hidden: boolean }).hidden,
        authzShown: !(root.querySelector('[data-group="authz"]') as unknown as { hidden: boolean }).hidden,
        p50: stat("p50"),
      };
    }, card);
    expect(serving).toMatchObject({
      clientCards: 1,
      serverCards: 1,
      title: "orders",
      state: "serving",
      success: "100.0 %",
      limit: "16",
      mode: "fixed",
      shedLow: "0",
      shedShown: true,
      authzShown: false,
    });
    expect(serving.p50).toMatch(/ ms$/);

    // A request in flight, then the drain.
    const slow = new Promise<number>((resolve, reject) => {
      http
        .get(`${url}/slow`, { agent: false }, (res) => res.resume().on("end", () => resolve(res.statusCode ?? 0)))
        .once("error", reject);
    });
    // Should the test fail before it awaits this, the cleanup's cut connection is no unhandled rejection.
    slow.catch(() => undefined);
    await until(() => orders.snapshot().inflight === 1, "the held request in flight", 5_000, 5);
    const drained = orders.drain();
    await page.waitForSelector(`${card}[data-state="draining"]`, { timeout: 5_000 });
    const draining = await page.evaluate((selector) => {
      const { document, getComputedStyle } = globalThis as unknown as BrowserGlobals;
      const root = document.querySelector(selector)!;
      const pill = root.querySelector(".pill-state")!;
      return {
        state: pill.textContent,
        colour: getComputedStyle(pill).backgroundColor,
        classes: root.getAttribute("class"),
        inflight: root.querySelector('[data-stat="inflight"]')?.textContent,
      };
    }, card);
    expect(draining).toMatchObject({ state: "draining", classes: "card server state-draining", inflight: "1" });
    expect(draining.colour).not.toBe(serving.colour);
    // The Prometheus text says the same, meanwhile.
    const { samples } = parsePrometheus(await (await fetch(`${admin.url}/metrics`)).text());
    expect(valueOf(samples, "weft_server_state", { service: "orders", state: "draining" })).toBe(1);
    expect(valueOf(samples, "weft_server_state", { service: "orders", state: "serving" })).toBe(0);
    expect(valueOf(samples, "weft_server_inflight", { service: "orders" })).toBe(1);
    expect(valueOf(samples, "weft_server_requests_total", { service: "orders" })).toBe(
      orders.snapshot().counters.requests,
    );
    expect(valueOf(samples, "weft_server_concurrency_limit", { service: "orders" })).toBe(16);

    release();
    expect(await slow).toBe(200);
    expect((await drained).forced).toBe(0);
    await page.waitForSelector(`${card}[data-state="closed"]`, { timeout: 5_000 });
    expect(await page.textContent(`${card} .pill-state`)).toBe("closed");
    expect(await page.textContent(`${card} [data-stat="inflight"]`)).toBe("0");
    expect(page.errors).toEqual([]);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-server.png"), fullPage: true });
  });

  it("shows a client's routes table and its config version: the routes in code, and a config file's with its rejection", async () => {
    const [v1, v2] = await Promise.all([server((_req, res) => res.end("v1")), server((_req, res) => res.end("v2"))]);
    const versions = [
      { url: v1.url, metadata: { version: "v1" } },
      { url: v2.url, metadata: { version: "v2" } },
    ];
    const dir = await mkdtemp(join(tmpdir(), "weft-dashboard-"));
    defer(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "orders.json");
    /** A new file renamed over the old one, as config tools write. */
    const publish = async (document: unknown): Promise<void> => {
      await writeFile(`${file}.tmp`, JSON.stringify(document));
      await rename(`${file}.tmp`, file);
    };
    await publish({ routes: [{ name: "checkout", match: { path: "/checkout" }, timeout: { totalMs: 2000 } }] });

    const mesh = scoped(createMesh({ onWarning: () => {} }));
    const catalog = mesh.client("catalog", {
      discovery: staticDiscovery(versions),
      random: seededRandom(3),
      routes: [
        { name: "canary", match: { headers: { "x-canary": "1" } }, backends: [{ subset: { version: "v2" } }] },
        {
          match: { path: "/v1/*" },
          backends: [
            { subset: { version: "v1" }, weight: 90 },
            { subset: { version: "v2" }, weight: 10 },
          ],
          mirror: { subset: { version: "v2" }, percent: 50 },
        },
        { name: "drill", match: { path: "/drill" }, fault: { abort: { percent: 100, status: 503 } } },
      ],
    });
    const orders = mesh.client("orders", {
      discovery: staticDiscovery([v1.url]),
      configSource: fileConfig(file, { pollMs: 50, debounceMs: 5 }),
    });
    mesh.client("users", { discovery: staticDiscovery([v1.url]) });
    const routing = (client: Client): RoutingSnapshot => client.snapshot().routing!;
    await expect.poll(() => routing(orders).version).toMatch(/^sha256:/);
    const inForce = routing(orders).version;

    const calls = async (client: Client, n: number, path: string, headers: Record<string, string> = {}) => {
      for (let i = 0; i < n; i++)
        await (await client.request({ path: path.replace("{i}", String(i)), headers })).text();
    };
    await calls(catalog, 1, "/v1/items/1", { "x-canary": "1" });
    await calls(catalog, 60, "/v1/items/{i}");
    await calls(catalog, 4, "/drill");
    await calls(catalog, 2, "/health");
    await calls(orders, 3, "/checkout");
    await calls(orders, 2, "/orders/{i}");
    await expect.poll(() => routing(catalog).routes[1]!.mirror!.inflight).toBe(0);
    // A version that fails validation: rejected, and the one in force keeps serving.
    await publish({ routes: [{ name: "checkout", backends: [{ subset: { version: "v1" }, weight: -5 }] }] });
    await expect.poll(() => routing(orders).config?.rejected).toBe(1);

    const admin = scoped(await serveAdmin(mesh, { intervalMs: 100 }));
    const page = await open(admin.url);
    const shown = (service: string): Promise<RoutingShown> =>
      page.evaluate((selector) => {
        const { document } = globalThis as unknown as BrowserGlobals;
        const root = document.querySelector(`${selector} .routing`)!;
        const hidden = (node: unknown): boolean => (node as { hidden: boolean }).hidden;
        const config: RoutingShown["config"] = {};
        for (const part of root.querySelectorAll("[data-config]"))
          config[part.getAttribute("data-config")!] = {
            text: part.textContent,
            title: part.getAttribute("title"),
            hidden: hidden(part),
          };
        const routes = [...root.querySelectorAll("tr.route")].map((tr) => {
          const cell = (key: string): string => tr.querySelector(`[data-cell="${key}"]`)?.textContent ?? "";
          const shares = tr.querySelectorAll(".split-share");
          const counts = tr.querySelectorAll(".split-calls");
          const backends = [...tr.querySelectorAll(".split-backend")].map((b, i) =>
            [b.textContent, shares[i]!.textContent, counts[i]!.textContent].filter((t) => t !== "").join(" "),
          );
          // The mirror's two lines: its target and share, then its counts.
          const mirror = [...tr.querySelectorAll('[data-cell="mirror"] span')].map((n) => n.textContent);
          return [
            cell("name"),
            cell("calls"),
            backends.join(" | "),
            cell("faults"),
            mirror.filter((t) => t !== "").join(" | "),
          ];
        });
        return { hidden: hidden(root), config, routes };
      }, `section.card[data-service="${service}"]`);
    // The page has caught up when the orders card shows the rejection.
    await page.waitForSelector('section.card[data-service="orders"] [data-config="rejected"]:not([hidden])');

    const catalogShown = await shown("catalog");
    expect(catalogShown.hidden).toBe(false);
    expect(catalogShown.config.version!.text).toBe("in code");
    // No config source: no state, no rejections.
    expect(catalogShown.config.state!.hidden).toBe(true);
    expect(catalogShown.config.rejected!.hidden).toBe(true);
    expect(catalogShown.routes).toEqual(expectedRoutes(routing(catalog)));
    expect(catalogShown.routes.map((r) => r.slice(0, 2))).toEqual([
      ["canary", "1"],
      ["/v1/*", "60"],
      ["drill", "4"],
      ["default", "2"],
    ]);
    expect(catalogShown.routes[1]![2]).toMatch(/^version=v1 90 % \d+ \| version=v2 10 % \d+$/);
    expect(catalogShown.routes[1]![4]).toMatch(/^→ version=v2 50 % \| \d+ sent · \d+ ok · 0 failed$/);
    expect(catalogShown.routes[2]![3]).toBe("0 delayed · 4 aborted");

    const ordersShown = await shown("orders");
    const rejected = routing(orders).config!.lastRejected!;
    expect(ordersShown.config.version!.text).toBe(inForce);
    expect(ordersShown.config.source!.text).toBe(`from file:${file}`);
    expect(ordersShown.config.state!.text).toBe("ok");
    expect(ordersShown.config.applied!.text).toMatch(/^applied /);
    // The reason, cut short on the card, whole in the title.
    const reason = `1 rejected, last ${rejected.version}: ${rejected.error}`;
    expect(rejected.error).toMatch(/weight: got -5/);
    expect(ordersShown.config.rejected!.title).toBe(reason);
    expect(ordersShown.config.rejected!.text).toMatch(
      /^1 rejected, last sha256:[0-9a-f]{12}: invalid option routes.*…$/,
    );
    expect(reason.startsWith(ordersShown.config.rejected!.text!.slice(0, -1))).toBe(true);
    expect(ordersShown.routes).toEqual([
      ["checkout", "3", "self", "", ""],
      ["default", "2", "self", "", ""],
    ]);
    // A client without routes has no routes section.
    expect((await shown("users")).hidden).toBe(true);

    expect(page.errors).toEqual([]);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-routes.png"), fullPage: true });

    // A document that does not parse: the source is stale, its error shown; the version in force stays.
    await writeFile(file, "{ routes: [");
    const state = 'section.card[data-service="orders"] [data-config="state"]';
    await page.waitForFunction((selector) => {
      const { document } = globalThis as unknown as BrowserGlobals;
      return document.querySelector(selector)?.textContent === "stale";
    }, state);
    const stale = await shown("orders");
    expect(stale.config.version!.text).toBe(inForce);
    expect(stale.config.error).toMatchObject({ hidden: false, text: expect.stringMatching(/^source failing: /) });
    expect(routing(orders).config!.lastError).toBeDefined();
    expect(page.errors).toEqual([]);
  });
});

/** What a client card shows of its routing: the config line's parts and the routes table, as text. */
interface RoutingShown {
  readonly hidden: boolean;
  readonly config: Record<
    string,
    { readonly text: string | null; readonly title: string | null; readonly hidden: boolean }
  >;
  readonly routes: readonly (readonly string[])[];
}

/** The routes table a card should show for `routing`, in the page's words. */
function expectedRoutes(routing: RoutingSnapshot): string[][] {
  return routing.routes.map((r) => {
    const split = r.backends.length > 1;
    const m = r.mirror;
    return [
      r.name,
      String(r.calls),
      r.backends.map((b) => (split ? `${b.backend} ${b.percent} % ${b.calls}` : b.backend)).join(" | "),
      r.faults === null ? "" : `${r.faults.delayed} delayed · ${r.faults.aborted} aborted`,
      m === null ? "" : `→ ${m.target} ${m.percent} % | ${m.sent} sent · ${m.ok} ok · ${m.failed} failed`,
    ];
  });
}

function byBehaviour(replicas: readonly Replica[], behaviour: Replica["behaviour"]): Replica {
  const replica = replicas.find((r) => r.behaviour === behaviour);
  if (replica === undefined) throw new Error(`no ${behaviour} replica`);
  return replica;
}

function continueProcess(pid: number): void {
  try {
    process.kill(pid, "SIGCONT");
  } catch {
    // Already gone: nothing to resume.
  }
}
