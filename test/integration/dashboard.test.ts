/**
 * The admin dashboard end to end, in real headless Chromium: the demo's replicas (child processes)
 * and the demo's mesh (`startDashboard`, exactly what `npm run demo -- --dashboard` runs), the page
 * following the live event stream. A replica frozen with SIGSTOP must turn to "ejected" on the
 * page, in the client whose attempt timeout makes outlier detection eject it. A `weft/server`
 * inbound in the mesh, serving real requests on a real node:http server, gets a server card whose
 * state turns to "draining" when `drain()` begins and to "closed" when it ends.
 *
 * Screenshots: always `artifacts/dashboard.png`; with WEFT_SCREENSHOT_DIR set, also
 * `$WEFT_SCREENSHOT_DIR/admin-dashboard.png` (taken after the charts have filled up for a while).
 */
import { mkdir } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMesh, staticDiscovery } from "weft";
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
});

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
