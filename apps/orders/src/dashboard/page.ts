/**
 * The dashboard page: one HTML document with its CSS and script inline, no
 * external asset. The script listens to `/dashboard/events` (EventSource,
 * which reconnects by itself), renders each `snapshot` event whole, and
 * applies each `transition` event at once (the breaker's state and the
 * timeline). The controls call the admin API with the token typed into the
 * page's admin token field (kept in the tab's sessionStorage, sent as
 * `Authorization: Bearer <token>`, never put in a URL): a chaos button PUTs
 * its profile (`Chaos.requestOf`) to `/admin/chaos/:downstream`, a breaker's
 * buttons POST `{ name }` to `/admin/breakers/force-open` or `/reset`. A 401
 * shows as "401: token required". The traffic button places orders through
 * the API's own `POST /orders`, one after another, each with a fresh
 * `Idempotency-Key`.
 */
import { profiles, requestOf } from "./Chaos.js"

const css = `
:root { --bg:#f5f6f8; --card:#fff; --ink:#1d2330; --muted:#667085; --line:#e3e6eb;
  --ok:#1f9d55; --warn:#d98a00; --bad:#d63b3b; --info:#2f6fd6; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:baseline; gap:16px; padding:12px 20px; background:#1d2330; color:#fff; }
header h1 { font-size:18px; margin:0; }
header .meta { color:#c7cdd8; font-size:13px; }
#conn { margin-left:auto; font-size:13px; padding:2px 8px; border-radius:10px; background:#555; }
#conn.live { background:var(--ok); }
main { display:grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap:14px; padding:14px 20px; }
@media (max-width: 1100px) { main { grid-template-columns: minmax(0, 1fr); } section.span2 { grid-column: auto; } }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
section.wide { grid-column: 1 / -1; }
section.span2 { grid-column: span 2; }
h2 { font-size:14px; text-transform:uppercase; letter-spacing:.04em; margin:0 0 8px; color:var(--muted); }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-weight:600; font-size:12px; color:#fff; background:var(--muted); }
.s-Closed { background:var(--ok); } .s-Open, .s-ForcedOpen { background:var(--bad); } .s-HalfOpen { background:var(--warn); }
.s-Disabled, .s-MetricsOnly { background:var(--info); }
.rule { color:var(--muted); font-size:12px; }
.flash { animation: flash 1.2s ease-out; }
@keyframes flash { from { background:#ffe9a8; } to { background:transparent; } }
ol#timeline { list-style:none; margin:0; padding:0; max-height:260px; overflow:auto; font-variant-numeric: tabular-nums; }
ol#timeline li { padding:3px 0; border-bottom:1px solid var(--line); }
ol#timeline .time { color:var(--muted); margin-right:8px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:12px; }
.kv { display:grid; grid-template-columns: max-content 1fr; gap:2px 16px; }
.kv .k { color:var(--muted); }
.big { font-size:22px; font-weight:700; }
.ok { color:var(--ok); } .bad { color:var(--bad); } .warn { color:var(--warn); }
.note { color:var(--muted); font-size:12px; margin-top:6px; }
button { font: inherit; font-size:12px; padding:2px 8px; margin:1px; border:1px solid var(--line); border-radius:5px; background:#f0f2f5; cursor:pointer; }
button:hover { background:#e2e6ec; }
button.on { background:#1d2330; color:#fff; border-color:#1d2330; }
.faults { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:11px; color:var(--muted); word-break:break-all; }
#chaos-status, #breaker-status { margin-top:6px; font-size:12px; }
td.control { white-space:nowrap; }
#token-bar { grid-column: 1 / -1; display:flex; align-items:center; gap:8px; font-size:13px; }
#token-bar input { font: inherit; width:22em; padding:2px 6px; }
.bar { display:inline-block; height:10px; background:var(--info); border-radius:2px; vertical-align:middle; margin-left:6px; }
`

const script = `
const $ = (id) => document.getElementById(id)
const h = (tag, attrs, ...children) => {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue
    if (k === "class") el.className = v
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v)
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return el
}
const fill = (id, ...children) => { const el = $(id); el.replaceChildren(...children); return el }
const ms = (v) => v === null || v === undefined ? "-" : v < 10 ? v.toFixed(1) : Math.round(v).toString()
const age = (v) => v === null ? "-" : v < 1000 ? Math.round(v) + " ms" : (v / 1000).toFixed(1) + " s"
const clock = (at) => new Date(at).toISOString().slice(11, 23)
const badge = (state) => h("span", { class: "badge s-" + state, "data-testid": "state" }, state)
const row = (cells, attrs) => h("tr", attrs, ...cells.map((c) => c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c)))
const num = (v) => h("td", { class: "num" }, v)
const head = (...names) => h("tr", {}, ...names.map((n) => h("th", { class: n.startsWith("#") ? "num" : "" }, n.replace(/^#/, ""))))

let timeline = []
const transitionText = (t) => t.kind === "breaker"
  ? t.dependency + " " + t.from + " \\u2192 " + t.to
  : t.dependency + " failover " + t.from + " \\u2192 " + t.to + " (" + t.reason + ")"
const renderTimeline = () => fill("timeline", ...(timeline.length === 0
  ? [h("li", { class: "note" }, "no transition yet")]
  : timeline.slice().reverse().map((t) => h("li", { "data-kind": t.kind, "data-dependency": t.dependency, "data-to": t.to },
      h("span", { class: "time" }, clock(t.at)), transitionText(t)))))

const TOKEN_KEY = "breakwater.adminToken"
const token = () => sessionStorage.getItem(TOKEN_KEY) || ""
const showToken = () => { $("token-state").textContent = token() === "" ? "no token: the controls will get 401" : "token set for this tab" }

/** One admin API call with the typed token; the status line says what came back. */
const admin = (method, path, body, status, what) => {
  const headers = { "content-type": "application/json" }
  if (token() !== "") headers.authorization = "Bearer " + token()
  $(status).textContent = what + ": ..."
  return fetch(path, { method, headers, body: JSON.stringify(body) })
    .then((r) => r.json().catch(() => ({})).then((b) => {
      $(status).textContent = what + ": " + (r.status === 401 ? "401: token required"
        : r.ok ? "done" : r.status + " " + (b.message || b._tag || JSON.stringify(b)).slice(0, 200))
      return r.ok ? b : null
    }))
    .catch((e) => { $(status).textContent = what + ": " + String(e); return null })
}

const breakerAction = (name, action) =>
  admin("POST", "/admin/breakers/" + action, { name }, "breaker-status", name + " " + action)
    .then((b) => { if (b !== null) $("breaker-status").textContent = name + " " + action + ": " + b.state })

const renderBreakers = (breakers) => fill("breakers",
  head("dependency", "state", "#turned away", "rule", "control"),
  ...breakers.map((b) => row([b.dependency, h("td", {}, badge(b.state)), num(b.notPermitted), h("td", { class: "rule" }, b.rule),
    h("td", { class: "control" },
      h("button", { "data-breaker-action": "force-open", onclick: () => breakerAction(b.dependency, "force-open") }, "force open"),
      h("button", { "data-breaker-action": "reset", onclick: () => breakerAction(b.dependency, "reset") }, "reset"))],
    { "data-breaker": b.dependency, "data-state": b.state })))

const renderDependencies = (deps) => fill("dependencies",
  head("dependency", "#calls", "#errors", "#p50 ms", "#p95 ms", "#retries", "#retry budget", "#fail-fast", "bulkhead", "pool"),
  ...deps.map((d) => row([
    h("td", { title: Object.entries(d.attempts).map(([k, v]) => k + ": " + v).join(", ") }, d.dependency),
    num(d.calls), h("td", { class: "num" + (d.errors > 0 ? " bad" : "") }, d.errors),
    num(d.latency ? ms(d.latency.p50Millis) : "-"), num(d.latency ? ms(d.latency.p95Millis) : "-"),
    num(d.retries + (d.budgetExhausted > 0 ? " (" + d.budgetExhausted + " refused)" : "")),
    num(d.retryBudget === null ? "no retries" : Math.floor(d.retryBudget)),
    num(d.notPermitted),
    d.bulkhead === null ? h("td", { class: "rule" }, "none") : d.bulkhead.inFlight + " in flight, " + d.bulkhead.queued + " queued",
    d.pool.map((p) => p.inUse + " in use, " + p.queued + " waiting").join("; ") || "idle"
  ], { "data-dependency": d.dependency })))

const kv = (id, pairs) => fill(id, ...pairs.flatMap(([k, v, cls]) => [h("div", { class: "k" }, k), h("div", { class: cls || "" }, v)]))

const renderSagas = (s) => {
  const max = Math.max(1, ...Object.values(s.byState))
  kv("sagas", [["total", s.total + (s.truncated ? " (first " + s.total + ")" : "")],
    ...Object.entries(s.byState).sort().map(([state, n]) => [state, h("span", {}, String(n), h("span", { class: "bar", style: "width:" + Math.round(120 * n / max) + "px" }))])])
}

const renderInvariants = (inv) => {
  const ok = inv.violations.length === 0
  fill("invariants",
    h("div", { class: "big " + (ok ? "ok" : "bad"), "data-testid": "invariants-summary" },
      ok ? "\\u2713 " + inv.ok + " / " + inv.checked + " orders hold" : "\\u2717 " + inv.violations.length + " violated"),
    h("div", { class: "note" }, inv.inFlight + " in flight (PENDING, or CONFIRMED and not notified yet); orders: " +
      Object.entries(inv.byState).map(([k, v]) => k + " " + v).join(", ")),
    ...inv.violations.slice(0, 20).map((v) => h("div", { class: "bad" }, v.orderId + " " + v.state + ": " + v.problems.join("; "))))
}

const chaosRequests = ${JSON.stringify(Object.fromEntries(profiles.map((p) => [p, requestOf(p)])))}
const setChaos = (name, profile) => {
  const body = JSON.parse(JSON.stringify(chaosRequests[profile]))
  if (profile === "slow") body.faults[0].delay = Number($("delay").value || body.faults[0].delay)
  admin("PUT", "/admin/chaos/" + encodeURIComponent(name), body, "chaos-status", name + " " + profile)
    .then((view) => { if (view !== null) $("chaos-status").textContent = name + ": " + profile + (view.up ? "" : " (down)") })
}

const placeOrders = () => {
  const n = Math.max(1, Math.min(50, Number($("order-count").value || 1)))
  $("traffic-status").textContent = "placing " + n + " order(s)..."
  const one = (i) => fetch("/orders", {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": "dashboard-" + crypto.randomUUID() },
    body: JSON.stringify({ sku: "mug", quantity: 1, amount: 1000 + i })
  }).then((r) => r.json().then((body) => r.ok ? body.order.id : r.status + " " + JSON.stringify(body).slice(0, 120)))
  let chain = Promise.resolve([])
  for (let i = 0; i < n; i++) chain = chain.then((ids) => one(i).then((id) => [...ids, id]))
  chain.then((ids) => { $("traffic-status").textContent = "placed: " + ids.join(", ") })
    .catch((e) => { $("traffic-status").textContent = String(e) })
}

const renderChaos = (downstreams) => downstreams.length === 0
  ? fill("chaos", h("tr", {}, h("td", { class: "note" }, "the downstreams are not in this process (a service started with their URLs only): no chaos controls")))
  : fill("chaos",
  head("downstream", "up", "profile", "set"),
  ...downstreams.map((d) => row([
    h("td", { title: d.url }, d.name),
    h("td", { class: d.up ? "ok" : "bad" }, d.up ? "up" : "down"),
    h("td", {}, d.profile, h("div", { class: "faults" }, d.faults === "{}" ? "" : d.faults)),
    h("td", {}, ...${JSON.stringify(profiles)}.map((p) =>
      h("button", { class: p === d.profile ? "on" : "", "data-downstream": d.name, "data-profile": p, onclick: () => setChaos(d.name, p) }, p)))
  ], { "data-downstream": d.name })))

const render = (s) => {
  $("at").textContent = "snapshot " + clock(s.at) + " UTC"
  renderBreakers(s.breakers)
  timeline = s.timeline
  renderTimeline()
  renderDependencies(s.dependencies)
  renderSagas(s.sagas)
  kv("outbox", [["backlog (pending)", s.outbox.pending, s.outbox.pending > 0 ? "warn" : ""],
    ["oldest pending", age(s.outbox.oldestPendingAgeMillis)], ["dead-lettered", s.outbox.dead, s.outbox.dead > 0 ? "bad" : ""],
    ["delivered", s.outbox.delivered], ["retried deliveries", s.outbox.retried]])
  kv("idempotency", [
    ...Object.entries(s.idempotency.downstreamReplays).map(([k, v]) => [k + " replays", v]),
    ["POST /orders executed", s.idempotency.api.executed ?? 0],
    ["POST /orders replays", h("span", { "data-testid": "api-replays" }, s.idempotency.apiReplays)],
    ["POST /orders conflicts", h("span", { "data-testid": "api-conflicts" }, s.idempotency.apiConflicts + " (" +
      (s.idempotency.api.conflict ?? 0) + " in flight 409, " + (s.idempotency.api.mismatch ?? 0) + " other body 422)"),
      s.idempotency.apiConflicts > 0 ? "warn" : ""],
    ["POST /orders without a key (400)", s.idempotency.api.missing ?? 0]])
  $("idempotency-note").textContent = s.idempotency.note
  const d = s.door
  kv("door", [
    ["bulkhead (orders in flight)", h("span", { "data-testid": "door-bulkhead" }, d.bulkhead.inFlight + " / " + d.bulkhead.maxConcurrent +
      (d.bulkhead.maxQueued > 0 ? ", " + d.bulkhead.queued + " / " + d.bulkhead.maxQueued + " queued" : ", no queue")),
      d.bulkhead.available === 0 ? "bad" : ""],
    ["rate limiter", Math.floor(d.rateLimit.available) + " tokens left (" + d.rateLimit.limit + " per " + d.rateLimit.period + ")"],
    ["admitted", h("span", { "data-testid": "door-admitted" }, d.admitted)],
    ["turned away: rate limited (429)", d.rateLimited, d.rateLimited > 0 ? "warn" : ""],
    ["turned away: bulkhead full (503)", d.bulkheadFull, d.bulkheadFull > 0 ? "warn" : ""]])
  kv("reconciliation", [["sagas parked (unknown outcome)", s.reconciliation.parked, s.reconciliation.parked > 0 ? "warn" : ""],
    ["reconciliation runs", s.reconciliation.runs],
    ["reconciled: charged (applied)", s.reconciliation.applied],
    ["reconciled: not charged (not applied)", s.reconciliation.notApplied],
    ["left for an operator", s.reconciliation.discrepancies, s.reconciliation.discrepancies > 0 ? "bad" : ""]])
  $("reconciliation-note").textContent = s.reconciliation.note
  renderInvariants(s.invariants)
  renderChaos(s.downstreams)
  $("problems").textContent = s.problems.join("; ")
  $("problems-box").hidden = s.problems.length === 0
}

const connect = () => {
  const source = new EventSource("/dashboard/events")
  source.onopen = () => { $("conn").textContent = "live"; $("conn").className = "live" }
  source.onerror = () => { $("conn").textContent = "reconnecting"; $("conn").className = "" }
  source.addEventListener("snapshot", (e) => render(JSON.parse(e.data)))
  source.addEventListener("transition", (e) => {
    const t = JSON.parse(e.data)
    timeline.push(t)
    renderTimeline()
    if (t.kind !== "breaker") return
    const tr = document.querySelector('tr[data-breaker="' + CSS.escape(t.dependency) + '"]')
    if (tr === null) return
    tr.dataset.state = t.to
    tr.querySelector('[data-testid="state"]').replaceWith(badge(t.to))
    tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash")
  })
}
$("place-orders").addEventListener("click", placeOrders)
$("admin-token").addEventListener("input", () => {
  const value = $("admin-token").value.trim()
  if (value === "") sessionStorage.removeItem(TOKEN_KEY); else sessionStorage.setItem(TOKEN_KEY, value)
  showToken()
})
$("admin-token").value = token()
showToken()
connect()
`

export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Orders service: live dashboard</title>
<style>${css}</style>
</head>
<body>
<header><h1>Orders service</h1><span class="meta">live dashboard</span><span class="meta" id="at">waiting for the first snapshot</span><span id="conn">connecting</span></header>
<main>
<div id="token-bar"><label for="admin-token">admin token</label>
<input id="admin-token" type="password" autocomplete="off" spellcheck="false" placeholder="the service's admin token (ADMIN_TOKEN)">
<span class="note" id="token-state"></span></div>
<section class="span2"><h2>Circuit breakers</h2><table id="breakers"></table><div id="breaker-status"></div></section>
<section><h2>Breaker and failover timeline</h2><ol id="timeline"></ol></section>
<section class="wide"><h2>Dependencies: calls, errors, latency, retries, bulkhead</h2><table id="dependencies"></table>
<div class="note">calls and errors: HTTP attempts (breakwater_http_attempts_total) since the process started; latency: the last attempts' client spans; fail-fast: calls the client's breaker turned away.</div></section>
<section><h2>Sagas by state</h2><div class="kv" id="sagas"></div></section>
<section><h2>Outbox</h2><div class="kv" id="outbox"></div></section>
<section><h2>Idempotency</h2><div class="kv" id="idempotency"></div><div class="note" id="idempotency-note"></div></section>
<section><h2>Reconciliation</h2><div class="kv" id="reconciliation"></div><div class="note" id="reconciliation-note"></div></section>
<section><h2>Load shedding at POST /orders</h2><div class="kv" id="door"></div>
<div class="note">the rate limiter and the bulkhead in front of POST /orders (dependency orders-api): an order holds a bulkhead permit until it leaves PENDING</div></section>
<section><h2>Invariants</h2><div id="invariants"></div></section>
<section class="wide"><h2>Chaos controls (admin API, token required)</h2><table id="chaos"></table>
<div class="note">slow: answers after <input id="delay" type="number" value="2000" min="0" max="60000" step="100" style="width:6em"> ms</div>
<div id="chaos-status"></div>
<div class="note">traffic: <input id="order-count" type="number" value="5" min="1" max="50" style="width:4em"> order(s) through POST /orders, one after another
<button id="place-orders">place orders</button></div>
<div id="traffic-status" class="note"></div></section>
<section class="wide" id="problems-box" hidden><h2>Could not read</h2><div class="bad" id="problems"></div></section>
</main>
<script>${script}</script>
</body>
</html>
`
