/**
 * The admin dashboard end to end, in real headless Chromium: the demo's replicas (child processes)
 * and the demo's mesh (`startDashboard`, exactly what `npm run demo -- --dashboard` runs), the page
 * following the live event stream. A replica frozen with SIGSTOP must turn to "ejected" on the
 * page, in the client whose attempt timeout makes outlier detection eject it.
 *
 * Screenshots: always `artifacts/dashboard.png`; with WEFT_SCREENSHOT_DIR set, also
 * `$WEFT_SCREENSHOT_DIR/admin-dashboard.png` (taken after the charts have filled up for a while).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMesh, staticDiscovery } from "weft";
import { serveAdmin } from "weft/admin";
import { DEMO_CLIENTS, startDashboard } from "../../examples/demo/dashboard.js";
import { ReplicaSet, type Replica } from "../../examples/demo/replicas.js";
import { launchChromium, skipChromium, type BrowserGlobals } from "../helpers/chromium.js";
import { defer, scoped, server } from "../helpers/scope.js";

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
    const page = Object.assign(await browser.newPage({ viewport: { width: 1440, height: 900 } }), { errors: [] as string[] });
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
        DEMO_CLIENTS.map((c) => ({ service: c.service, title: c.service, endpoints: c.behaviours.map((b) => byBehaviour(replicas, b).url) })),
      );

      // Live figures: the load shows up as a request rate and a drawn chart.
      await page.waitForFunction(() => {
        const { document } = globalThis as unknown as BrowserGlobals;
        const rate = document.querySelector('[data-service="catalog"] [data-stat="rps"]')?.textContent ?? "–";
        const area = document.querySelector('[data-service="catalog"] [data-chart="rate"] path.area-rate')?.getAttribute("d") ?? "";
        return rate !== "–" && Number(rate) > 0 && area.includes("L");
      });
      // After the first snapshot the page gets updates carrying a second or two of history each:
      // the charts grow as it merges them.
      const p50Points = (atLeast: number): number | false => {
        const { document } = globalThis as unknown as BrowserGlobals;
        const d = document.querySelector('[data-service="catalog"] [data-chart="latency"] path.line-p50')?.getAttribute("d") ?? "";
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
    const token = "page-token_123";
    const admin = scoped(await serveAdmin(mesh, { token, intervalMs: 200 }));

    const page = await open(`${admin.url}?token=${token}`);
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.waitForSelector("section.card tr.endpoint");
    const seen = await page.evaluate(() => {
      const { document, __pwned } = globalThis as unknown as BrowserGlobals;
      return {
        service: document.querySelector("section.card")?.getAttribute("data-service"),
        title: document.querySelector("section.card h2")?.textContent,
        zone: document.querySelector("tr.endpoint td:nth-child(2)")?.textContent,
        injected: document.querySelectorAll("#clients img, #clients script, #clients iframe, #clients [onerror]").length,
        pwned: __pwned,
      };
    });
    expect(seen).toEqual({ service: name, title: name, zone, injected: 0, pwned: undefined });
    expect(dialogs).toEqual([]);
    expect(page.errors).toEqual([]);
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
