/**
 * The dashboard's browser script, as text (plain ES2017, no framework, no build step). It follows
 * `/admin/events` with an `EventSource` and updates the page in place on each `snapshot` or
 * `update` event: one card per client, created once and kept, its figures and charts refreshed,
 * its endpoint rows added, updated and removed by URL, and for a client with routes (the
 * snapshot's `routing`) its config version and routes table; then, in a section of their own, one
 * card per server (`weft/server`'s `inbound({ mesh })`, the snapshot's `servers`): its state,
 * requests in flight, admission limit and mode, shed and authorization counts, rates, latency and
 * the same two charts. The charts draw from histories the page keeps per service — the clients'
 * and the servers' apart, as a process may both serve and call one service: a `snapshot` replaces
 * them, an `update` carries only their tails and is merged in by `mergeHistories`
 * (history-delta.ts), inlined here with `toString()` so the page runs the very function the tests
 * check (the wire format is in stream.ts).
 *
 * Every value from the mesh goes in through `textContent`, `setAttribute` or an SVG path built
 * from numbers — never `innerHTML` — so names cannot become markup. The page forwards its own
 * `?token=` to the stream and the links, since `EventSource` cannot send an Authorization header.
 *
 * Test hooks (stable): each client card is `section.card[data-service]`; each endpoint row is
 * `tr.endpoint[data-endpoint][data-state][data-breaker]` with a `tone-<healthy|probing|breaker|
 * ejected|draining>` class; a client's routing is `.routing` (hidden without routes), the parts of
 * its config line `[data-config]` (version, source, state, applied, rejected, error), its route
 * rows `tr.route[data-route]` with cells `[data-cell]` (name, calls, backends, faults, mirror);
 * each server card is `section.card.server[data-server][data-state]` (state `serving`, `draining`
 * or `closed`, also as a `state-<state>` class; no `data-service`, so client-card selectors do not
 * match it), its figures `[data-stat]` (rps, success, p50, p99, inflight, limit, shed, requests)
 * and counts `[data-count="<group>.<key>"]` (shed.<priority>, authz.<decision>,
 * refused.<errors|aborted|expired|badDeadline>; the shed and authz groups are hidden while those
 * are off); `#status[data-status]` is `live` once the stream delivers.
 *
 * Written with String.raw and without template literals inside, so the script's backslashes and
 * dollar signs reach the browser as written; the one substitution is `mergeHistories`' source.
 */
import { mergeHistories } from "./history-delta.js";

export const PAGE_SCRIPT = String.raw`
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var W = 300, H = 64;
  var MIN_SPAN_MS = 60000, MAX_SPAN_MS = 300000;
  var base = location.pathname.replace(/\/+$/, "");
  var token = new URLSearchParams(location.search).get("token");
  var main = document.getElementById("clients");
  var serversEl = document.getElementById("servers");
  var clientsTitle = document.getElementById("clients-title");
  var serversTitle = document.getElementById("servers-title");
  var serversLegend = document.getElementById("legend-servers");
  var empty = document.getElementById("empty");
  var statusEl = document.getElementById("status");
  var updatedEl = document.getElementById("updated");
  var cards = new Map();
  var serverCards = new Map();
  /** Per service, its history as merged from the events: what the charts draw (clients and servers apart). */
  var histories = new Map();
  var serverHistories = new Map();
  var PRIORITIES = ["critical", "high", "normal", "low"];
  var DECISIONS = ["allow", "deny", "unauthenticated", "malformed"];
  var SERVER_STATES = ["serving", "draining", "closed"];
  /** A client card lists at most this many routes (the last one default); snapshot.json has them all. */
  var MAX_ROUTE_ROWS = 40;

  ${mergeHistories.toString()}

  function withToken(path) { return token === null ? path : path + "?token=" + encodeURIComponent(token); }
  document.getElementById("link-json").setAttribute("href", withToken(base + "/snapshot.json"));
  document.getElementById("link-metrics").setAttribute("href", withToken(base + "/metrics"));

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgEl(tag, className) {
    var node = document.createElementNS(SVG, tag);
    if (className) node.setAttribute("class", className);
    return node;
  }
  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmtMs(v) {
    if (!isNum(v)) return "–";
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    return (v < 10 ? v.toFixed(1) : String(Math.round(v))) + " ms";
  }
  function fmtRate(v) { return !isNum(v) ? "–" : v < 10 ? v.toFixed(1) : String(Math.round(v)); }
  function fmtInt(v) { return isNum(v) ? String(v) : "–"; }
  function fmtPercent(v) { return isNum(v) ? v.toFixed(1) + " %" : "–"; }

  function setStatus(kind, text) {
    statusEl.className = "status status-" + kind;
    statusEl.setAttribute("data-status", kind);
    setText(statusEl, text);
  }

  function makeStat(container, key, label) {
    var box = el("div", "stat");
    var value = el("span", "value", "–");
    value.setAttribute("data-stat", key);
    box.appendChild(value);
    box.appendChild(el("span", "label", label));
    container.appendChild(box);
    return value;
  }

  function makeChart(kind, keys) {
    var figure = el("figure", "chart");
    figure.setAttribute("data-chart", kind);
    var svg = svgEl("svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    var paths = {};
    keys.forEach(function (key) { paths[key[0]] = svg.appendChild(svgEl("path", key[1])); });
    var caption = el("figcaption");
    var legend = el("span");
    keys.forEach(function (key, i) {
      if (i > 0) legend.appendChild(document.createTextNode(" / "));
      legend.appendChild(el("span", "key-" + key[0], key[2]));
    });
    var scale = el("span", "scale");
    caption.appendChild(legend);
    caption.appendChild(scale);
    figure.appendChild(svg);
    figure.appendChild(caption);
    return { root: figure, svg: svg, paths: paths, scale: scale };
  }

  function createCard(service) {
    var root = el("section", "card");
    root.setAttribute("data-service", service);
    var head = el("div", "card-head");
    var title = el("h2", "service", service);
    var stale = el("span", "badge badge-stale", "discovery stale");
    var panic = el("span", "badge badge-panic", "panic");
    var closed = el("span", "badge badge-closed", "closed");
    stale.hidden = panic.hidden = closed.hidden = true;
    var meta = el("span", "meta");
    [title, stale, panic, closed, meta].forEach(function (n) { head.appendChild(n); });
    var error = el("p", "error");
    var stats = el("div", "stats");
    var card = {
      root: root, title: title, stale: stale, panic: panic, closed: closed, meta: meta, error: error,
      rps: makeStat(stats, "rps", "req/s"), success: makeStat(stats, "success", "success"),
      p50: makeStat(stats, "p50", "p50 latency"), p99: makeStat(stats, "p99", "p99 latency"),
      retries: makeStat(stats, "retries", "retries/s"), hedges: makeStat(stats, "hedges", "hedges/s"),
      inflight: makeStat(stats, "inflight", "in flight"), budget: makeStat(stats, "budget", "retry tokens"),
      latency: makeChart("latency", [["p50", "line-p50", "p50"], ["p99", "line-p99", "p99 latency"]]),
      rate: makeChart("rate", [["rate", "area-rate", "requests/s"], ["fail", "line-fail", "failures/s"]]),
      rows: new Map(), tbody: el("tbody")
    };
    var charts = el("div", "charts");
    charts.appendChild(card.latency.root);
    charts.appendChild(card.rate.root);
    var scroller = el("div", "table-scroll");
    var table = scroller.appendChild(el("table", "endpoints"));
    var headRow = el("tr");
    ["endpoint", "zone", "state", "breaker", "in flight", "latency", "requests", "failures", "ejections", "weight"].forEach(function (name, i) {
      headRow.appendChild(el("th", i >= 4 ? "num" : "", name));
    });
    table.appendChild(el("thead")).appendChild(headRow);
    table.appendChild(card.tbody);
    card.routing = createRouting();
    [head, error, stats, charts, card.routing.root, scroller].forEach(function (n) { root.appendChild(n); });
    return card;
  }

  /**
   * A client's routes (snapshot.routing, null without routes): one line for the config version in
   * force — where it came from, ok or stale, rejections and the last one's reason — and a table of
   * the routes with their calls, each backend's share and calls, and faults and mirrored copies.
   */
  function createRouting() {
    var root = el("div", "routing");
    root.hidden = true;
    var line = root.appendChild(el("div", "config"));
    line.appendChild(el("span", "tally-title", "routes"));
    var parts = {};
    [["version", "config-version"], ["source", "config-source"], ["state", "pill"], ["applied", "config-note"], ["rejected", "config-note"], ["error", "config-error"]].forEach(function (p) {
      parts[p[0]] = line.appendChild(el("span", p[1]));
      parts[p[0]].setAttribute("data-config", p[0]);
    });
    var scroller = root.appendChild(el("div", "table-scroll"));
    var table = scroller.appendChild(el("table", "routes"));
    var headRow = el("tr");
    ["route", "calls", "backends (share, calls)", "faults", "mirror"].forEach(function (name, i) {
      headRow.appendChild(el("th", i === 1 ? "num" : "", name));
    });
    table.appendChild(el("thead")).appendChild(headRow);
    var tbody = table.appendChild(el("tbody"));
    var more = root.appendChild(el("p", "note"));
    return { root: root, parts: parts, table: table, tbody: tbody, more: more, rows: [] };
  }

  /** Text at most n characters long, ending in an ellipsis when cut (the full text goes in a title). */
  function truncate(text, n) { return text.length <= n ? text : text.slice(0, n - 1) + "…"; }
  function setTitled(node, text, n) {
    setText(node, truncate(text, n));
    if (text.length > n) node.setAttribute("title", text); else node.removeAttribute("title");
  }

  function updateRouting(r, routing) {
    // A snapshot from a mesh older than routing has no routing key.
    r.root.hidden = routing === null || routing === undefined;
    if (r.root.hidden) return;
    var p = r.parts, config = routing.config;
    var inCode = routing.version === "code";
    setText(p.version, inCode ? "in code" : routing.version);
    // The routes in code serve while a config source has had nothing applied yet: say from where it will come.
    setTitled(p.source, !inCode ? "from " + routing.source : config !== null ? "nothing applied yet from " + config.source : "", 70);
    p.state.hidden = p.applied.hidden = p.rejected.hidden = p.error.hidden = config === null;
    if (config !== null) {
      p.state.className = "pill config-" + (config.stale ? "stale" : "ok");
      setText(p.state, config.stale ? "stale" : "ok");
      p.applied.hidden = !isNum(config.appliedAt);
      setText(p.applied, isNum(config.appliedAt) ? "applied " + new Date(config.appliedAt).toLocaleTimeString() : "");
      p.rejected.hidden = config.rejected === 0;
      var last = config.lastRejected;
      setTitled(p.rejected, config.rejected + " rejected" + (last ? ", last " + last.version + ": " + last.error : ""), 96);
      p.rejected.className = "config-note" + (last ? " bad" : "");
      p.error.hidden = !config.stale || !config.lastError;
      setTitled(p.error, config.lastError ? "source failing: " + config.lastError : "", 96);
    }
    // Many routes: the first ones and default; snapshot.json has them all.
    var routes = routing.routes;
    var shown = routes.length <= MAX_ROUTE_ROWS ? routes : routes.slice(0, MAX_ROUTE_ROWS - 1).concat(routes.slice(-1));
    setText(r.more, shown.length < routes.length ? (routes.length - shown.length) + " more routes in snapshot.json" : "");
    r.table.classList.toggle("no-faults", !shown.some(function (route) { return route.faults; }));
    r.table.classList.toggle("no-mirror", !shown.some(function (route) { return route.mirror; }));
    shown.forEach(function (route, i) {
      var row = r.rows[i];
      if (!row) { row = createRouteRow(); r.rows.push(row); r.tbody.appendChild(row.tr); }
      updateRouteRow(row, route);
    });
    r.rows.splice(shown.length).forEach(function (row) { row.tr.remove(); });
  }

  function createRouteRow() {
    var tr = el("tr", "route");
    var cells = {};
    ["name", "calls", "backends", "faults", "mirror"].forEach(function (key, i) {
      cells[key] = tr.appendChild(el("td", i === 0 ? "url" : i === 1 ? "num" : ""));
      cells[key].setAttribute("data-cell", key);
    });
    var split = cells.backends.appendChild(el("div", "split"));
    var mirrorTarget = cells.mirror.appendChild(el("span", "mirror-target"));
    var mirrorCounts = cells.mirror.appendChild(el("span", "mirror-counts"));
    return { tr: tr, cells: cells, split: split, backends: [], mirrorTarget: mirrorTarget, mirrorCounts: mirrorCounts };
  }

  function updateRouteRow(row, route) {
    row.tr.setAttribute("data-route", route.name);
    setTitled(row.cells.name, route.name, 40);
    setText(row.cells.calls, fmtInt(route.calls));
    // Each backend: its label, share and calls, three cells of the split's grid.
    var split = route.backends.length > 1;
    route.backends.forEach(function (b, i) {
      var parts = row.backends[i];
      if (!parts) {
        parts = [el("span", "split-backend"), el("span", "split-share"), el("span", "split-calls")];
        parts.forEach(function (n) { row.split.appendChild(n); });
        row.backends.push(parts);
      }
      setTitled(parts[0], b.backend, 32);
      setText(parts[1], split ? fmtShare(b.percent) : "");
      setText(parts[2], split ? fmtInt(b.calls) : "");
    });
    row.backends.splice(route.backends.length).forEach(function (parts) { parts.forEach(function (n) { n.remove(); }); });
    var f = route.faults;
    setText(row.cells.faults, f ? f.delayed + " delayed · " + f.aborted + " aborted" : "");
    var m = route.mirror;
    setTitled(row.mirrorTarget, m ? "→ " + m.target + " " + fmtShare(m.percent) : "", 40);
    // Dropped, skipped, unavailable and in flight only when there are some: the usual line is three counts.
    setText(row.mirrorCounts, m ? [m.sent + " sent", m.ok + " ok", m.failed + " failed"].concat(
      m.dropped > 0 ? [m.dropped + " dropped"] : [], m.skipped > 0 ? [m.skipped + " skipped"] : [],
      m.unavailable > 0 ? [m.unavailable + " unavailable"] : [], m.inflight > 0 ? [m.inflight + " in flight"] : []
    ).join(" · ") : "");
  }
  function fmtShare(v) { return isNum(v) ? (Math.round(v * 10) / 10) + " %" : "–"; }

  function toneOf(e) {
    if (e.state === "ejected" || e.activeHealthy === false) return "ejected";
    if (e.state === "draining") return "draining";
    if (isNum(e.stalledForMs)) return "stalled";
    if (e.breaker === "open" || e.breaker === "halfOpen") return "breaker";
    if (e.state === "probing") return "probing";
    return "healthy";
  }

  function createRow(url) {
    var tr = el("tr", "endpoint");
    tr.setAttribute("data-endpoint", url);
    var cells = {};
    ["url", "zone", "state", "breaker", "inflight", "latency", "requests", "failures", "ejections", "weight"].forEach(function (key, i) {
      cells[key] = tr.appendChild(el("td", i === 0 ? "url" : i >= 4 ? "num" : ""));
    });
    // Plain http is the common case: show host:port, keep the full URL in the tooltip and data-endpoint.
    cells.url.textContent = url.indexOf("http://") === 0 ? url.slice(7) : url;
    cells.url.setAttribute("title", url);
    var statePill = cells.state.appendChild(el("span", "pill pill-state"));
    var stateNote = cells.state.appendChild(el("span", "note"));
    var breakerPill = cells.breaker.appendChild(el("span", "pill"));
    return { tr: tr, cells: cells, statePill: statePill, stateNote: stateNote, breakerPill: breakerPill };
  }

  function updateRow(row, e) {
    var tone = toneOf(e);
    var className = "endpoint tone-" + tone;
    if (row.tr.className !== className) row.tr.className = className;
    row.tr.setAttribute("data-state", e.state);
    row.tr.setAttribute("data-breaker", e.breaker);
    setText(row.cells.zone, e.zone === null || e.zone === undefined ? "" : String(e.zone));
    var stalled = e.state === "healthy" && isNum(e.stalledForMs);
    setText(row.statePill, e.activeHealthy === false && e.state === "healthy" ? "failing checks" : stalled ? "stalled" : e.state);
    setText(row.stateNote, isNum(e.ejectedForMs) ? "back in " + Math.ceil(e.ejectedForMs / 1000) + " s" : stalled ? "no answer for " + Math.floor(e.stalledForMs / 1000) + " s" : "");
    row.breakerPill.className = "pill pill-breaker-" + e.breaker;
    setText(row.breakerPill, e.breaker === "halfOpen" ? "half-open" : e.breaker);
    setText(row.cells.inflight, fmtInt(e.inflight));
    setText(row.cells.latency, fmtMs(e.latencyMs));
    setText(row.cells.requests, fmtInt(e.requests));
    setText(row.cells.failures, fmtInt(e.failures));
    setText(row.cells.ejections, fmtInt(e.ejections));
    setText(row.cells.weight, isNum(e.effectiveWeight) && e.effectiveWeight !== e.weight ? e.effectiveWeight + " of " + e.weight : fmtInt(e.weight));
  }

  /** An SVG path through the points' values (gaps where a value is missing), and its first and last x. */
  function pathOf(points, t0, span, yMax, pick) {
    var d = "", pen = false, firstX = null, lastX = null;
    for (var i = 0; i < points.length; i++) {
      var v = pick(points[i]);
      if (points[i].at < t0 || !isNum(v)) { pen = false; continue; }
      var x = (((points[i].at - t0) / span) * W).toFixed(1);
      var y = (H - 2 - (Math.min(v, yMax) / yMax) * (H - 6)).toFixed(1);
      d += (pen ? "L" : "M") + x + " " + y;
      pen = true;
      if (firstX === null) firstX = x;
      lastX = x;
    }
    return { d: d, firstX: firstX, lastX: lastX };
  }

  function drawCharts(card, all) {
    // The newest point is the second in progress: drawing it would show every rate dropping.
    var history = all.length > 1 ? all.slice(0, -1) : all;
    var last = history.length > 0 ? history[history.length - 1].at + 1000 : Date.now();
    var first = history.length > 0 ? history[0].at : last;
    var span = Math.min(MAX_SPAN_MS, Math.max(MIN_SPAN_MS, last - first));
    var t0 = last - span;
    var maxLatency = 1, maxRate = 1;
    history.forEach(function (p) {
      if (p.at < t0) return;
      if (isNum(p.p99Ms) && p.p99Ms > maxLatency) maxLatency = p.p99Ms;
      if (p.requests > maxRate) maxRate = p.requests;
    });
    card.latency.paths.p50.setAttribute("d", pathOf(history, t0, span, maxLatency, function (p) { return p.p50Ms; }).d);
    card.latency.paths.p99.setAttribute("d", pathOf(history, t0, span, maxLatency, function (p) { return p.p99Ms; }).d);
    // Requests as an area: the line, then down to the baseline and back to where it started.
    var rate = pathOf(history, t0, span, maxRate, function (p) { return p.requests; });
    card.rate.paths.rate.setAttribute("d", rate.d === "" ? "" : rate.d + "L" + rate.lastX + " " + H + "L" + rate.firstX + " " + H + "Z");
    card.rate.paths.fail.setAttribute("d", pathOf(history, t0, span, maxRate, function (p) { return p.failures; }).d);
    var minutes = Math.round(span / 60000);
    setText(card.latency.scale, "max " + fmtMs(maxLatency) + " · " + minutes + " min");
    setText(card.rate.scale, "peak " + maxRate + "/s · " + minutes + " min");
  }

  function updateCard(card, c, history) {
    var w = c.stats.window;
    setText(card.title, c.service);
    card.stale.hidden = !c.discovery.stale;
    card.panic.hidden = !c.panic;
    card.closed.hidden = !c.closed;
    var available = c.endpoints.filter(function (e) { return e.state === "healthy" || e.state === "probing"; }).length;
    setText(card.meta, c.balancer + " · " + c.transport + " · discovery: " + c.discovery.source + " · " + available + " of " + c.endpoints.length + " endpoints in service");
    setText(card.error, c.discovery.lastError ? "discovery: " + c.discovery.lastError : "");
    setText(card.rps, fmtRate(w.requestsPerSecond));
    setText(card.success, fmtPercent(w.successPercent));
    card.success.className = "value" + (!isNum(w.successPercent) ? "" : w.successPercent >= 99 ? " good" : w.successPercent >= 95 ? " warn" : " bad");
    setText(card.p50, fmtMs(w.latencyMs ? w.latencyMs.p50 : null));
    setText(card.p99, fmtMs(w.latencyMs ? w.latencyMs.p99 : null));
    setText(card.retries, fmtRate(w.retriesPerSecond));
    setText(card.hedges, fmtRate(w.hedgesPerSecond));
    setText(card.inflight, fmtInt(c.counters.inflight));
    setText(card.budget, c.retryBudget === null ? "off" : fmtRate(c.retryBudget));
    drawCharts(card, history);
    var zoned = c.endpoints.some(function (e) { return e.zone !== null && e.zone !== undefined; });
    card.root.classList.toggle("no-zones", !zoned);
    // Likewise the weight column, while every endpoint weighs the same and none is ramping up.
    var weighted = c.endpoints.some(function (e) { return e.weight !== 1 || e.effectiveWeight !== e.weight; });
    card.root.classList.toggle("no-weights", !weighted);
    var seen = new Set();
    c.endpoints.forEach(function (e, i) {
      seen.add(e.url);
      var row = card.rows.get(e.url);
      if (!row) { row = createRow(e.url); card.rows.set(e.url, row); }
      updateRow(row, e);
      if (card.tbody.children[i] !== row.tr) card.tbody.insertBefore(row.tr, card.tbody.children[i] || null);
    });
    card.rows.forEach(function (row, url) { if (!seen.has(url)) { row.tr.remove(); card.rows.delete(url); } });
    updateRouting(card.routing, c.routing);
  }

  /** A row of counts: a title, then "key value" pairs, each value with data-count="group.key". */
  function makeTallies(container, group, title, keys) {
    var root = el("div", "tally-group");
    root.setAttribute("data-group", group);
    root.appendChild(el("span", "tally-title", title));
    var values = {};
    keys.forEach(function (key) {
      var tally = el("span", "tally");
      tally.appendChild(el("span", "tally-key", key[1]));
      var value = el("span", "tally-value", "–");
      value.setAttribute("data-count", group + "." + key[0]);
      tally.appendChild(value);
      root.appendChild(tally);
      values[key[0]] = value;
    });
    container.appendChild(root);
    return { root: root, values: values };
  }
  function setCount(node, v, badWhenPositive) {
    setText(node, fmtInt(v));
    node.className = "tally-value" + (badWhenPositive && isNum(v) && v > 0 ? " bad" : "");
  }
  function pairs(list) { return list.map(function (k) { return [k, k]; }); }

  function createServerCard(service) {
    var root = el("section", "card server");
    root.setAttribute("data-server", service);
    var head = el("div", "card-head");
    var title = el("h2", "service", service);
    var state = el("span", "pill pill-state");
    var meta = el("span", "meta");
    [title, state, meta].forEach(function (n) { head.appendChild(n); });
    var stats = el("div", "stats");
    var tallies = el("div", "tallies");
    var card = {
      root: root, title: title, state: state, meta: meta,
      rps: makeStat(stats, "rps", "req/s"), success: makeStat(stats, "success", "success"),
      p50: makeStat(stats, "p50", "p50 latency"), p99: makeStat(stats, "p99", "p99 latency"),
      inflight: makeStat(stats, "inflight", "in flight"), limit: makeStat(stats, "limit", "admission limit"),
      shedTotal: makeStat(stats, "shed", "shed"), requests: makeStat(stats, "requests", "requests"),
      shed: makeTallies(tallies, "shed", "shed by priority", pairs(PRIORITIES)),
      authz: makeTallies(tallies, "authz", "authz", pairs(DECISIONS)),
      refused: makeTallies(tallies, "refused", "refused / failed", [["errors", "5xx"], ["aborted", "aborted"], ["expired", "deadline expired"], ["badDeadline", "bad deadline"]]),
      latency: makeChart("latency", [["p50", "line-p50", "p50"], ["p99", "line-p99", "p99 latency"]]),
      rate: makeChart("rate", [["rate", "area-rate", "requests/s"], ["fail", "line-fail", "5xx/s"]])
    };
    var charts = el("div", "charts");
    charts.appendChild(card.latency.root);
    charts.appendChild(card.rate.root);
    [head, stats, tallies, charts].forEach(function (n) { root.appendChild(n); });
    return card;
  }

  function updateServerCard(card, s, history) {
    var w = s.stats.window;
    // Only a known state becomes a class and an attribute: the page never makes a class from free text.
    var state = SERVER_STATES.indexOf(s.state) === -1 ? "closed" : s.state;
    var className = "card server state-" + state;
    if (card.root.className !== className) card.root.className = className;
    card.root.setAttribute("data-state", state);
    setText(card.title, s.service);
    card.state.className = "pill pill-state pill-server-" + state;
    setText(card.state, state);
    var a = s.admission;
    var mode = a === null || a === undefined ? "admission off"
      : a.adaptive ? "admission adaptive" + (isNum(a.minRttMs) ? " · min RTT " + fmtMs(a.minRttMs) : "") + (isNum(a.sampleRttMs) ? " · window p50 " + fmtMs(a.sampleRttMs) : "")
      : "admission fixed";
    setText(card.meta, mode + " · authz " + (s.authz === null || s.authz === undefined ? "off" : "on") + (state === "draining" ? " · draining: readiness fails, connections close after their request" : ""));
    card.limit.setAttribute("data-mode", a === null || a === undefined ? "off" : a.adaptive ? "adaptive" : "fixed");
    setText(card.rps, fmtRate(w.requestsPerSecond));
    setText(card.success, fmtPercent(w.successPercent));
    card.success.className = "value" + (!isNum(w.successPercent) ? "" : w.successPercent >= 99 ? " good" : w.successPercent >= 95 ? " warn" : " bad");
    setText(card.p50, fmtMs(w.latencyMs ? w.latencyMs.p50 : null));
    setText(card.p99, fmtMs(w.latencyMs ? w.latencyMs.p99 : null));
    setText(card.inflight, fmtInt(s.inflight));
    setText(card.limit, a === null || a === undefined ? "off" : fmtInt(a.limit));
    setText(card.shedTotal, fmtInt(s.counters.shed));
    card.shedTotal.className = "value" + (isNum(s.counters.shed) && s.counters.shed > 0 ? " warn" : "");
    setText(card.requests, fmtInt(s.counters.requests));
    card.shed.root.hidden = a === null || a === undefined;
    PRIORITIES.forEach(function (p) { setCount(card.shed.values[p], a ? a.shed[p] : null, true); });
    card.authz.root.hidden = s.authz === null || s.authz === undefined;
    DECISIONS.forEach(function (d) { setCount(card.authz.values[d], s.authz ? s.authz[d] : null, d !== "allow"); });
    setCount(card.refused.values.errors, s.counters.errors, true);
    setCount(card.refused.values.aborted, s.counters.aborted, false);
    setCount(card.refused.values.expired, s.counters.expired, true);
    setCount(card.refused.values.badDeadline, s.counters.badDeadline, true);
    drawCharts(card, history || []);
  }

  function render(snapshot, full) {
    histories = mergeHistories(histories, snapshot.clients, full);
    var seen = new Set();
    snapshot.clients.forEach(function (c, i) {
      seen.add(c.service);
      var card = cards.get(c.service);
      if (!card) { card = createCard(c.service); cards.set(c.service, card); }
      updateCard(card, c, histories.get(c.service));
      if (main.children[i] !== card.root) main.insertBefore(card.root, main.children[i] || null);
    });
    cards.forEach(function (card, service) { if (!seen.has(service)) { card.root.remove(); cards.delete(service); } });
    // A snapshot from a mesh older than weft/server has no servers.
    var servers = snapshot.servers || [];
    serverHistories = mergeHistories(serverHistories, servers, full);
    var seenServers = new Set();
    servers.forEach(function (s, i) {
      seenServers.add(s.service);
      var card = serverCards.get(s.service);
      if (!card) { card = createServerCard(s.service); serverCards.set(s.service, card); }
      updateServerCard(card, s, serverHistories.get(s.service));
      if (serversEl.children[i] !== card.root) serversEl.insertBefore(card.root, serversEl.children[i] || null);
    });
    serverCards.forEach(function (card, service) { if (!seenServers.has(service)) { card.root.remove(); serverCards.delete(service); } });
    // Section titles only when there are servers: a clients-only page looks as it always did.
    serversTitle.hidden = serversLegend.hidden = servers.length === 0;
    clientsTitle.hidden = servers.length === 0 || snapshot.clients.length === 0;
    if (snapshot.clients.length === 0 && servers.length === 0) { setText(empty, "No clients or servers in this mesh yet."); if (!empty.isConnected) main.appendChild(empty); }
    else if (empty.isConnected) empty.remove();
    setText(updatedEl, "updated " + new Date(snapshot.takenAt).toLocaleTimeString());
    document.body.setAttribute("data-taken-at", String(snapshot.takenAt));
  }

  var source = new EventSource(withToken(base + "/events"));
  source.addEventListener("open", function () { setStatus("connecting", "connected"); });
  function follow(full) {
    return function (event) {
      setStatus("live", "live");
      render(JSON.parse(event.data), full);
    };
  }
  source.addEventListener("snapshot", follow(true));
  source.addEventListener("update", follow(false));
  source.addEventListener("failure", function (event) {
    setStatus("down", "snapshot failed: " + JSON.parse(event.data).error);
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) setStatus("down", "disconnected: reload to retry");
    else setStatus("connecting", "reconnecting…");
  });
})();
`;
