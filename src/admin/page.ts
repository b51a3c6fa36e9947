/**
 * The dashboard page: one self-contained HTML document (markup here, CSS in `page-style.ts`, the
 * browser script in `page-script.ts`), no CDN, no build step, nothing to install for the user.
 *
 * The markup holds no data at all: not the service names, not the token. Everything the mesh
 * reports reaches the page through the event stream and is put into the DOM with `textContent`
 * and `setAttribute` only, never `innerHTML`, so a service called `<img src=x onerror=…>` is shown
 * as those characters. The only value written into the markup is the CSP nonce, which is base64.
 */
import { PAGE_SCRIPT } from "./page-script.js";
import { PAGE_STYLE } from "./page-style.js";

/**
 * The page, with `nonce` on its one `<style>` and one `<script>` (the server's
 * Content-Security-Policy allows those and nothing else).
 * @example res.end(renderPage(randomBytes(16).toString("base64")))
 */
export function renderPage(nonce: string): string {
  if (!/^[A-Za-z0-9+/=]+$/.test(nonce)) throw new TypeError("renderPage: the nonce must be base64");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>weft mesh</title>
<style nonce="${nonce}">${PAGE_STYLE}</style>
</head>
<body>
<header class="top">
  <h1><span class="logo">weft</span> mesh</h1>
  <span id="status" class="status status-connecting" data-status="connecting">connecting…</span>
  <span id="updated" class="updated"></span>
  <nav class="links"><a id="link-json" href="snapshot.json">snapshot.json</a> <a id="link-metrics" href="metrics">metrics</a></nav>
</header>
<main>
  <h2 id="clients-title" class="section-title" hidden>Clients <span class="section-note">the calls this process makes</span></h2>
  <div id="clients" class="cards" aria-live="polite">
    <p id="empty" class="empty">Waiting for the first snapshot…</p>
  </div>
  <h2 id="servers-title" class="section-title" hidden>Servers <span class="section-note">the requests this process serves</span></h2>
  <div id="servers" class="cards" aria-live="polite"></div>
</main>
<footer class="legend">
  <span class="legend-item tone-healthy">healthy</span>
  <span class="legend-item tone-probing">probing</span>
  <span class="legend-item tone-breaker">breaker open / half-open</span>
  <span class="legend-item tone-stalled">stalled (no answer)</span>
  <span class="legend-item tone-ejected">ejected / failing health checks</span>
  <span class="legend-item tone-draining">draining</span>
  <span id="legend-servers" class="legend-servers" hidden>servers: <span class="pill pill-server-serving">serving</span> <span class="pill pill-server-draining">draining</span> <span class="pill pill-server-closed">closed</span></span>
  <span class="legend-note">rates and latency over the last 10 s; charts over the last minutes, one point per second</span>
</footer>
<script nonce="${nonce}">${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
