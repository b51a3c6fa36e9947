/**
 * Where the per-call overhead goes: the in-memory overhead bench again, with the default stack
 * taken apart through the public stack API (`options.stack: s => s.remove(role)`), one layer at
 * a time. "cost of X" = (full stack) − (stack without X). Two more rows split what is left:
 * `mockService` alone (the in-memory transport, called directly) and the client with an empty
 * stack (request envelope: option checks, headers, Cancellation, request object + the transport).
 *
 * Subtraction of medians is noisy at the ~100 ns level; treat each figure as ± 0.1 µs and look
 * at which parts are large. Run: `npx tsx bench/layers.ts [--quick]` or `npm run bench -- --layers`.
 */
import { pathToFileURL } from "node:url";
import { Cancellation, newRequest, Stack, type Client, type ClientOptions, type MeshRequest } from "weft";
import { mockService } from "weft/testing";
import { fmt, machineLine, printTable, readSettings, type BenchSettings } from "./lib.js";
import { measureRows, memoryClient, terminal, type OverheadRow } from "./overhead.js";

interface Variant {
  readonly name: string;
  readonly client: Client;
}

function variants(label: string, base: Partial<ClientOptions>, roles: readonly string[]): Variant[] {
  let n = 0;
  const make = (name: string, extra: Partial<ClientOptions>): Variant => ({
    name,
    client: memoryClient(`layers-${label}-${n++}`, { ...base, ...extra }),
  });
  return [
    make(`${label}: full stack`, {}),
    ...roles.map((role) => make(`${label}: without ${role}`, { stack: (s: Stack) => s.remove(role) })),
    make(`${label}: empty stack`, { stack: () => new Stack([]) }),
  ];
}

export async function runLayers(settings: BenchSettings): Promise<void> {
  const roles = memoryClient("layers-probe").stack.roles;
  const groups = [
    variants("default", {}, roles),
    variants("timeouts", { timeout: { attemptMs: 500, totalMs: 2000 } }, roles),
  ];
  const transport = mockService(() => ({ status: 200, body: "ok" })).create();
  const req: MeshRequest = newRequest({ path: "/x", cancel: new Cancellation(), service: "s" });
  const rows: OverheadRow[] = [
    { name: "bare await fn()", call: terminal },
    { name: "mockService transport alone", call: () => transport.send(req) },
    ...groups
      .flat()
      .map((v) => ({ name: v.name, call: () => v.client.request({ path: "/x" }), close: () => v.client.close() })),
  ];
  try {
    const ns = await measureRows(rows, settings);
    const bare = ns[0] as number;
    const mock = ns[1] as number;
    const table: string[][] = [
      ["bare await fn()", fmt(bare), "", ""],
      ["mockService transport alone", fmt(mock), fmt((mock - bare) / 1000, 2), "the in-memory transport itself"],
    ];
    let at = 2;
    for (const group of groups) {
      const full = ns[at] as number;
      group.forEach((v, i) => {
        const value = ns[at + i] as number;
        const note =
          i === 0
            ? `over bare: ${fmt((full - bare) / 1000, 2)} µs`
            : i === group.length - 1
              ? `envelope (request() without layers, net of mock): ${fmt((value - mock) / 1000, 2)} µs`
              : `cost of ${v.name.split("without ")[1]}: ${fmt((full - value) / 1000, 2)} µs`;
        table.push([v.name, fmt(value), fmt((value - bare) / 1000, 2), note]);
      });
      at += group.length;
    }
    printTable(["layer breakdown (in memory)", "ns/call", "over bare µs", ""], table);
  } finally {
    for (const row of rows) await row.close?.();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft layer breakdown — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  await runLayers(settings);
}
