/**
 * The dashboard's stylesheet. Colours carry the endpoint's state the way Hystrix's and Linkerd's
 * dashboards do (green healthy, red ejected or failing, orange breaker, grey draining); each row
 * also spells its state out in words, so the page reads without colour too. A server card's edge
 * and state pill carry its state the same way: green serving, orange draining (on its way out,
 * still answering), grey closed.
 */
export const PAGE_STYLE = `
:root {
  --bg: #f4f6f8; --card: #ffffff; --ink: #1f2328; --muted: #656d76; --line: #d8dee4;
  --green: #1a7f37; --green-bg: #e6f6ea; --red: #cf222e; --red-bg: #ffebe9;
  --orange: #bc4c00; --orange-bg: #fff1e5; --grey: #6e7781; --grey-bg: #eef1f4;
  --blue: #0969da; --blue-bg: #ddf4ff; --purple: #8250df;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
.top { position: sticky; top: 0; z-index: 1; display: flex; align-items: baseline; gap: 16px; padding: 12px 24px; background: #24292f; color: #f6f8fa; }
.top h1 { margin: 0; font-size: 18px; font-weight: 600; }
.logo { font-weight: 800; letter-spacing: 0.04em; }
.status { font-size: 13px; padding: 2px 8px; border-radius: 10px; }
.status-live { background: #2da44e; color: #fff; }
.status-connecting { background: #9a6700; color: #fff; }
.status-down { background: var(--red); color: #fff; }
.updated { font-size: 13px; color: #afb8c1; font-variant-numeric: tabular-nums; }
.links { margin-left: auto; font-size: 13px; }
.links a { color: #9ecbff; margin-left: 12px; }
main { padding: 16px 24px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 16px; }
.section-title { display: flex; align-items: baseline; gap: 10px; margin: 0 0 10px; font-size: 13px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); }
.section-title[hidden], .legend-servers[hidden] { display: none; }
.cards + .section-title { margin-top: 22px; }
.section-note { font-weight: 400; text-transform: none; letter-spacing: 0; }
.empty { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
.card-head { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
.card-head h2 { margin: 0; font-size: 17px; font-weight: 600; overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.badge { font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 9px; text-transform: uppercase; letter-spacing: 0.03em; }
.badge[hidden] { display: none; }
.badge-stale { background: var(--orange-bg); color: var(--orange); border: 1px solid var(--orange); }
.badge-panic { background: var(--red-bg); color: var(--red); border: 1px solid var(--red); }
.badge-closed { background: var(--grey-bg); color: var(--grey); border: 1px solid var(--grey); }
.error { color: var(--red); font-size: 12px; margin: 4px 0 0; overflow-wrap: anywhere; }
.error:empty { display: none; }
.stats { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px 12px; margin: 12px 0 8px; }
.stat { display: flex; flex-direction: column; }
.stat .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat .label { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.value.good { color: var(--green); } .value.warn { color: var(--orange); } .value.bad { color: var(--red); }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin: 4px 0 10px; }
.chart { margin: 0; }
.chart svg { display: block; width: 100%; height: 64px; background: #fafbfc; border: 1px solid var(--line); border-radius: 4px; }
.chart figcaption { display: flex; justify-content: space-between; font-size: 11px; color: var(--muted); margin-top: 3px; }
.key-p50 { color: var(--blue); } .key-p99 { color: var(--purple); } .key-rate { color: var(--green); } .key-fail { color: var(--red); }
.line-p50 { fill: none; stroke: var(--blue); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.line-p99 { fill: none; stroke: var(--purple); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.area-rate { fill: var(--green-bg); stroke: var(--green); stroke-width: 1.2; vector-effect: non-scaling-stroke; }
.line-fail { fill: none; stroke: var(--red); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.table-scroll { overflow-x: auto; }
.no-zones .endpoints th:nth-child(2), .no-zones .endpoints td:nth-child(2) { display: none; }
.no-weights .endpoints th:nth-child(10), .no-weights .endpoints td:nth-child(10) { display: none; }
table.endpoints { width: 100%; border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
.endpoints th { text-align: left; font-weight: 600; color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.02em; padding: 4px 5px; border-bottom: 1px solid var(--line); white-space: nowrap; }
.endpoints td { padding: 4px 5px; border-bottom: 1px solid #eaeef2; white-space: nowrap; }
.endpoints td.url { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.endpoints .num { text-align: right; }
.endpoints tr.endpoint > td:first-child { border-left: 4px solid transparent; }
.pill { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 11px; font-weight: 600; }
.tone-healthy { background: var(--green-bg); } .tone-healthy > td:first-child { border-left-color: var(--green) !important; } .tone-healthy .pill-state { background: var(--green); color: #fff; }
.tone-probing { background: var(--blue-bg); } .tone-probing > td:first-child { border-left-color: var(--blue) !important; } .tone-probing .pill-state { background: var(--blue); color: #fff; }
.tone-breaker { background: var(--orange-bg); } .tone-breaker > td:first-child { border-left-color: var(--orange) !important; } .tone-breaker .pill-state { background: var(--orange); color: #fff; }
.tone-ejected { background: var(--red-bg); } .tone-ejected > td:first-child { border-left-color: var(--red) !important; } .tone-ejected .pill-state { background: var(--red); color: #fff; }
.tone-stalled { background: var(--orange-bg); } .tone-stalled > td:first-child { border-left-color: var(--orange) !important; } .tone-stalled .pill-state { background: var(--orange); color: #fff; }
.tone-draining { background: var(--grey-bg); color: var(--grey); } .tone-draining > td:first-child { border-left-color: var(--grey) !important; } .tone-draining .pill-state { background: var(--grey); color: #fff; }
.pill-breaker-open, .pill-breaker-halfOpen { background: var(--orange); color: #fff; }
.pill-breaker-closed { color: var(--muted); }
.note { display: block; color: var(--muted); font-size: 10.5px; }
.note:empty { display: none; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; padding: 0 24px 20px; font-size: 12px; color: var(--muted); }
.legend-item { padding: 2px 8px; border-radius: 4px; color: var(--ink); }
.legend-item.tone-healthy { border-left: 4px solid var(--green); } .legend-item.tone-probing { border-left: 4px solid var(--blue); }
.legend-item.tone-breaker { border-left: 4px solid var(--orange); } .legend-item.tone-ejected { border-left: 4px solid var(--red); }
.legend-item.tone-draining { border-left: 4px solid var(--grey); } .legend-item.tone-stalled { border-left: 4px dashed var(--orange); }
.tone-stalled > td:first-child { border-left-style: dashed !important; }
.card.server { border-left: 5px solid var(--green); }
.card.server.state-draining { border-left-color: var(--orange); }
.card.server.state-closed { border-left-color: var(--grey); }
.pill-server-serving { background: var(--green); color: #fff; }
.pill-server-draining { background: var(--orange); color: #fff; }
.pill-server-closed { background: var(--grey); color: #fff; }
.tallies { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 0 0 10px; font-size: 12px; font-variant-numeric: tabular-nums; }
.tally-group[hidden] { display: none; }
.tally-title { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.04em; margin-right: 6px; }
.tally { margin-right: 8px; white-space: nowrap; }
.tally-key { color: var(--muted); margin-right: 3px; }
.tally-value { font-weight: 600; }
.tally-value.bad { color: var(--red); }
.routing { margin: 2px 0 12px; }
.routing[hidden], .routing [hidden] { display: none; }
.config { display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 10px; font-size: 12px; margin-bottom: 4px; }
.config .tally-title { margin-right: 0; }
.config-version { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight: 600; }
.config-source, .config-note { color: var(--muted); overflow-wrap: anywhere; }
.config-note.bad, .config-error { color: var(--red); overflow-wrap: anywhere; }
.config-ok { background: var(--green-bg); color: var(--green); }
.config-stale { background: var(--orange); color: #fff; }
table.routes { width: 100%; border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
.routes th { text-align: left; font-weight: 600; color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.02em; padding: 3px 5px; border-bottom: 1px solid var(--line); white-space: nowrap; }
.routes td { padding: 3px 5px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
.routes td.url { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: nowrap; }
.routes .num { text-align: right; }
.routes tbody tr:last-child td { color: var(--muted); }
.routes.no-faults th:nth-child(4), .routes.no-faults td:nth-child(4), .routes.no-mirror th:nth-child(5), .routes.no-mirror td:nth-child(5) { display: none; }
.routes td[data-cell="faults"] { white-space: nowrap; }
.mirror-target, .mirror-counts { display: block; white-space: nowrap; }
.mirror-counts { color: var(--muted); }
.split { display: inline-grid; grid-template-columns: auto auto auto; gap: 0 12px; }
.split-share, .split-calls { text-align: right; }
.split-share { color: var(--muted); }
@media (max-width: 640px) { main { padding: 12px; } .cards { grid-template-columns: 1fr; } .stats { grid-template-columns: repeat(2, 1fr); } .charts { grid-template-columns: 1fr; } }
`;
