import { BigDecimal, Option } from "effect"
import type { BudgetStatus } from "../budget/BudgetGuard.js"
import { format } from "../domain/Money.js"
import { FallbackReason } from "../summarize/Summary.js"
import type { CallFilter, UsageTotals } from "../usage/UsageRepo.js"
import { noCaller } from "../usage/UsageRepo.js"
import { toCall } from "../usage/UsageHandlers.js"
import type { Dashboard, LiveState } from "./DashboardData.js"
import { periods } from "./DashboardData.js"

/** Text for HTML content and attribute values. */
export const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")

const zero = BigDecimal.fromBigInt(0n)

const calls = (n: number) => `${n} call${n === 1 ? "" : "s"}`

/** The exact decimal, and beside it, never folded into it, the calls whose cost nobody knows. */
const spend = (t: Pick<UsageTotals, "costUsd" | "calls" | "unknownCostCalls">, figure?: string, unit = "") => {
  const attr = figure === undefined ? "" : ` data-figure="${esc(figure)}"`
  const known = `<span class="usd"${attr}>${esc(format(t.costUsd))}</span>${unit}`
  if (t.unknownCostCalls === 0) return known
  const unknown = `<span class="unknown">unknown (${calls(t.unknownCostCalls)})</span>`
  return t.unknownCostCalls === t.calls && BigDecimal.equals(t.costUsd, zero)
    ? `<span class="usd" hidden${attr}>${esc(format(t.costUsd))}</span>${unknown}`
    : `${known}<span class="plus"> + ${unknown}</span>`
}

const percent = (part: BigDecimal.BigDecimal, whole: BigDecimal.BigDecimal) =>
  BigDecimal.isZero(whole) ? 0 : BigDecimal.unsafeToNumber(BigDecimal.unsafeDivide(part, whole)) * 100

const pct = (n: number) => `${n >= 10 || n === 0 ? n.toFixed(0) : n.toFixed(1)}%`

const levelPct = (level: BigDecimal.BigDecimal) => pct(BigDecimal.unsafeToNumber(level) * 100)

const budgetTitle = (b: BudgetStatus) => `${b.budget === "daily" ? "Today" : "This month"}: ${b.kind === "hard" ? "hard cap" : "alert budget"}`

/** A bar drawn in SVG (attributes, not inline styles, so the page's CSP holds); the text beside it carries the figures. */
const bar = (b: BudgetStatus, levels: ReadonlyArray<BigDecimal.BigDecimal>) => {
  const committed = BigDecimal.sum(b.spentUsd, b.kind === "hard" ? b.reservedUsd : zero)
  const scale = BigDecimal.max(b.limitUsd, committed)
  const x = (v: BigDecimal.BigDecimal) => Math.min(1000, Math.max(0, percent(v, scale) * 10)).toFixed(1)
  const spentX = x(b.spentUsd)
  const reservedW = b.kind === "hard" ? (Number(x(committed)) - Number(spentX)).toFixed(1) : "0"
  const marks = b.kind === "alert"
    ? levels.map((level) => {
      const at = x(BigDecimal.multiply(b.limitUsd, level))
      const sent = b.levelsAlerted.includes(format(level))
      return `<line x1="${at}" x2="${at}" y1="0" y2="28" class="mark${sent ? " sent" : ""}"/>`
    }).join("")
    : `<line x1="${x(b.limitUsd)}" x2="${x(b.limitUsd)}" y1="0" y2="28" class="mark cap"/>`
  const over = BigDecimal.greaterThanOrEqualTo(committed, b.limitUsd)
  return `<svg class="bar" viewBox="0 0 1000 28" preserveAspectRatio="none" aria-hidden="true" focusable="false">` +
    `<rect x="0" y="4" width="1000" height="20" class="track"/>` +
    `<rect x="0" y="4" width="${spentX}" height="20" class="spent${over ? " over" : ""}"/>` +
    (b.kind === "hard" ? `<rect x="${spentX}" y="4" width="${reservedW}" height="20" class="reserved"/>` : "") +
    marks + `</svg>`
}

const budgetCard = (b: BudgetStatus, d: Dashboard) => {
  const id = `budget-${b.budget}-${b.kind}`
  const used = percent(b.spentUsd, b.limitUsd)
  const head = `<h3 id="${id}-title">${esc(budgetTitle(b))}</h3>` +
    `<p class="big"><span data-figure="${id}-spent">${esc(format(b.spentUsd))}</span> of <span data-figure="${id}-limit">${
      esc(format(b.limitUsd))
    }</span> USD <span class="muted">(${pct(used)})</span></p>` + bar(b, d.alertLevels)
  if (b.kind === "alert") {
    const items = d.alertLevels.map((level) => {
      const sent = b.levelsAlerted.includes(format(level))
      const at = format(BigDecimal.normalize(BigDecimal.multiply(b.limitUsd, level)))
      const state = sent ? `<span class="sent">✓ alert sent</span>` : BigDecimal.greaterThanOrEqualTo(b.spentUsd, BigDecimal.multiply(b.limitUsd, level))
        ? `<span class="due">reached, alert not sent yet</span>`
        : `<span class="muted">not reached</span>`
      return `<li data-level="${esc(format(level))}" data-sent="${sent}">${levelPct(level)} (${esc(at)} USD): ${state}</li>`
    }).join("")
    return `<article class="card" aria-labelledby="${id}-title" data-budget="${id}">${head}<ul class="levels">${items}</ul></article>`
  }
  const room = BigDecimal.max(zero, BigDecimal.subtract(BigDecimal.subtract(b.limitUsd, b.spentUsd), b.reservedUsd))
  const fits = Option.match(d.worstCaseUsd, {
    onNone: () => `unknown: the models have no price, so under a hard cap calls are refused`,
    onSome: (w) =>
      `${esc(format(w))} USD: ${
        BigDecimal.greaterThan(room, zero) && BigDecimal.lessThanOrEqualTo(w, room) ? `<strong class="ok">fits</strong>` : `<strong class="bad">does not fit</strong>`
      }`
  })
  return `<article class="card" aria-labelledby="${id}-title" data-budget="${id}">${head}<dl class="facts">` +
    `<dt>Spent</dt><dd><span data-figure="${id}-spent2">${esc(format(b.spentUsd))}</span> USD</dd>` +
    `<dt>Reserved by calls in flight</dt><dd><span data-figure="${id}-reserved">${esc(format(b.reservedUsd))}</span> USD</dd>` +
    `<dt>Room left</dt><dd><span data-figure="${id}-room">${esc(format(room))}</span> USD</dd>` +
    `<dt>One more worst-case call</dt><dd>${fits}</dd></dl></article>`
}

const budgetsSection = (d: Dashboard) => {
  const cards = d.budgets.map((b) => budgetCard(b, d)).join("")
  return `<section aria-labelledby="budgets-title"><h2 id="budgets-title">Budgets</h2>
<div class="grid">
<article class="card" aria-labelledby="today-title"><h3 id="today-title">Today (${esc(d.today)}, UTC)</h3>
<p class="big">${spend(d.todayTotal, "today-cost", " USD")}</p><p class="muted">${calls(d.todayTotal.calls)}, ${d.todayTotal.failedCalls} failed</p></article>
<article class="card" aria-labelledby="month-title"><h3 id="month-title">This month (from ${esc(d.monthFrom)}, UTC)</h3>
<p class="big">${spend(d.monthTotal, "month-cost", " USD")}</p><p class="muted">${calls(d.monthTotal.calls)}, ${d.monthTotal.failedCalls} failed</p></article>
</div>
${cards === "" ? "" : `<div class="grid budgets">${cards}</div>`}
${
    d.budgets.length === 0
      ? `<p class="muted">No budget is set: COST_ALERT_DAILY_USD, COST_ALERT_MONTHLY_USD, COST_HARD_LIMIT_DAILY_USD and COST_HARD_LIMIT_MONTHLY_USD are all unset.</p>`
      : ""
  }
</section>`
}

const numericHeads = new Set(["Spend (USD)", "Calls", "Failed", "Unknown cost", "Tokens", "Summaries", "Cost (USD)", "Attempt", "Tokens in", "Tokens out", "Latency (ms)"])

/** A captioned table in a region that scrolls sideways on its own (and takes focus, for the keyboard). */
const table = (id: string, caption: string, head: ReadonlyArray<string>, rows: ReadonlyArray<string>, foot = "", kind: "figures" | "rows" = "figures") =>
  `<div class="scroll" role="region" aria-labelledby="${id}" tabindex="0"><table class="${kind}"><caption id="${id}">${esc(caption)}</caption>` +
  `<thead><tr>${head.map((h) => `<th scope="col"${numericHeads.has(h) ? ` class="num"` : ""}>${esc(h)}</th>`).join("")}</tr></thead>` +
  `<tbody>${rows.join("")}</tbody>${foot}</table></div>`

const num = (n: number | string) => `<td class="num">${typeof n === "number" ? n.toLocaleString("en-US") : n}</td>`

/** The chart's input: exact decimal text per model and day, numbers only where uPlot must draw. */
const chartData = (d: Dashboard) => {
  const cell = (day: Dashboard["byDay"][number], model: string) => day.models.find((g) => g.key === model)
  return {
    days: d.byDay.map((x) => x.day),
    series: d.byModel.map(({ key: model, costUsd, unknownCostCalls }) => ({
      model,
      totalUsd: format(costUsd),
      totalUnknownCostCalls: unknownCostCalls,
      costUsd: d.byDay.map((x) => Option.match(Option.fromNullable(cell(x, model)), { onNone: () => "0", onSome: (g) => format(g.costUsd) })),
      unknownCostCalls: d.byDay.map((x) => cell(x, model)?.unknownCostCalls ?? 0)
    }))
  }
}

const json = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c")

const periodSwitch = (d: Dashboard) =>
  `<nav class="switch" aria-label="Period">${
    periods.map((p) =>
      p === d.days
        ? `<a href="/dashboard?days=${p}#spend" aria-current="true">Last ${p} days</a>`
        : `<a href="/dashboard?days=${p}#spend">Last ${p} days</a>`
    ).join("")
  }</nav>`

const spendSection = (d: Dashboard) => {
  const modelRows = d.byModel.map((g) =>
    `<tr data-model="${esc(g.key)}"><th scope="row">${esc(g.key)}</th><td class="num">${spend(g, `model-cost:${g.key}`)}</td>` +
    `${num(g.calls)}${num(g.failedCalls)}${num(g.unknownCostCalls)}${num(g.totalTokens)}</tr>`
  )
  const t = d.periodTotal
  const count = (figure: string, n: number) => num(`<span data-figure="${figure}">${n.toLocaleString("en-US")}</span>`)
  const modelFoot = `<tfoot><tr><th scope="row">Total</th><td class="num">${spend(t, "period-cost")}</td>${count("period-calls", t.calls)}${
    count("period-failed", t.failedCalls)
  }${count("period-unknown", t.unknownCostCalls)}${count("period-tokens", t.totalTokens)}</tr></tfoot>`
  const callerRows = d.byCaller.map((g) =>
    `<tr data-caller="${esc(g.key)}"><th scope="row">${esc(g.key)}</th><td class="num">${spend(g, `caller-cost:${g.key}`)}</td>` +
    `${num(g.calls)}${num(g.failedCalls)}${num(g.unknownCostCalls)}</tr>`
  )
  const active = d.byDay.filter((x) => x.total.calls > 0).reverse()
  const dayRows = active.map((x) =>
    `<tr data-day="${x.day}"><th scope="row">${x.day}</th><td class="num">${spend(x.total, `day-cost:${x.day}`)}</td>` +
    `${num(x.total.calls)}${num(x.total.failedCalls)}${num(x.total.unknownCostCalls)}</tr>`
  )
  return `<section id="spend" aria-labelledby="spend-title"><h2 id="spend-title">Spend over time</h2>
${periodSwitch(d)}
<p class="muted">${esc(d.from)} to ${esc(d.today)} (UTC), USD. Calls of unknown cost are counted apart and never added as zero. Caller ${noCaller}: calls made without a token.</p>
<figure class="chart-figure"><div id="chart" class="chart" data-days="${d.byDay.length}" data-models="${d.byModel.length}"></div>
<figcaption>Daily spend by model, stacked. Hover or tap a day for the exact figures; the tables below hold the same numbers.</figcaption></figure>
<script type="application/json" id="chart-data">${json(chartData(d))}</script>
<div class="stack">
${table("by-model-title", `Spend by model, last ${d.days} days`, ["Model", "Spend (USD)", "Calls", "Failed", "Unknown cost", "Tokens"], modelRows, modelFoot)}
${
    table(
      "by-caller-title",
      `Spend by caller, last ${d.days} days`,
      ["Caller", "Spend (USD)", "Calls", "Failed", "Unknown cost"],
      callerRows
    )
  }
${
    table(
      "by-day-title",
      `Days with calls, last ${d.days} days (${active.length} of ${d.byDay.length})`,
      ["Day (UTC)", "Spend (USD)", "Calls", "Failed", "Unknown cost"],
      dayRows
    )
  }
</div>
</section>`
}

const how: Record<string, string> = {
  none: "by the model",
  cached: "from the summary cache",
  cosmetic: "formatting only (no model call)"
}

/** Every known outcome, counted or not, so a zero reads as zero rather than as missing. */
const withZeros = (outcome: string, reasons: ReadonlyArray<string>, counted: ReadonlyArray<Dashboard["outcomes"][number]>) => {
  const listed = reasons.map((reason) => counted.find((o) => o.outcome === outcome && o.reason === reason) ?? { outcome, reason, count: 0 })
  return [...listed, ...counted.filter((o) => o.outcome === outcome && !reasons.includes(o.reason))]
}

const outcomesSection = (d: Dashboard) => {
  const summarized = withZeros("summarized", Object.keys(how), d.outcomes)
  const fallbacks = withZeros("fallback", FallbackReason.literals, d.outcomes)
  const rows = (list: ReadonlyArray<Dashboard["outcomes"][number]>) =>
    list.map((o) =>
      `<tr data-outcome="${esc(o.outcome)}:${esc(o.reason)}"><th scope="row">${esc(how[o.reason] ?? o.reason)}</th>${num(o.count)}</tr>`
    )
  const total = (list: ReadonlyArray<Dashboard["outcomes"][number]>) => list.reduce((n, o) => n + o.count, 0)
  return `<section aria-labelledby="outcomes-title"><h2 id="outcomes-title">Outcomes</h2>
<p>Summaries are not stored, only the model calls behind them are, so these counts are what <strong>this process</strong> has seen since it started at ${
    esc(d.processStartedAt)
  } (the <code>summaries_total</code> metric). They restart at zero with the service and cover this replica only; the ledger figures above cover every replica and the whole period.</p>
<div class="grid2">
${table("summarized-title", `Summarized: ${total(summarized)}`, ["How", "Summaries"], rows(summarized))}
${table("fallbacks-title", `Fallbacks (raw diff returned): ${total(fallbacks)}`, ["Reason", "Summaries"], rows(fallbacks))}
</div>
</section>`
}

const time = (iso: string) => `<time datetime="${esc(iso)}">${esc(iso.slice(0, 19).replace("T", " "))}</time>`

type CallRow = Dashboard["calls"]["calls"][number]

const callRow = (c: CallRow) =>
  `<tr data-call="${esc(c.id)}"><td>${time(c.createdAt)}</td>` +
  `<td class="num">${c.costUsd === null ? `<span class="unknown">unknown</span>` : esc(format(c.costUsd))}</td>` +
  `<td>${esc(c.model)}</td><td>${esc(c.purpose ?? "")}</td>` +
  `<td>${c.caller === null ? `<span class="muted">${esc(noCaller)}</span>` : esc(c.caller)}</td>` +
  `<td>${c.status === "success" ? "success" : `<span class="bad">error</span>${c.errorCode === null ? "" : ` ${esc(c.errorCode)}`}`}</td>` +
  `${num(c.attempt)}${num(c.promptTokens)}${num(c.completionTokens)}${num(c.latencyMs)}<td>${esc(c.costSource)}</td></tr>`


const callHead = ["Time (UTC)", "Cost (USD)", "Model", "Purpose", "Caller", "Status", "Attempt", "Tokens in", "Tokens out", "Latency (ms)", "Cost from"]

const query = (params: Record<string, string | undefined>) => {
  const entries = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== "")
  return entries.length === 0 ? "" : `?${entries.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&")}`
}

const select = (name: string, label: string, options: ReadonlyArray<string>, chosen: string | undefined) =>
  `<div class="field"><label for="filter-${name}">${esc(label)}</label><select id="filter-${name}" name="${name}">` +
  `<option value="">Any</option>${
    options.map((o) => `<option value="${esc(o)}"${o === chosen ? " selected" : ""}>${esc(o)}</option>`).join("")
  }</select></div>`

const filterParams = (d: Dashboard, f: CallFilter) => ({ days: String(d.days), model: f.model, status: f.status, purpose: f.purpose, caller: f.caller })

const callsSection = (d: Dashboard) => {
  const f = d.filter
  const models = [...new Set([...d.filterValues.models, ...(f.model ? [f.model] : [])])]
  const purposes = [...new Set([...d.filterValues.purposes, ...(f.purpose ? [f.purpose] : [])])]
  const callers = [...new Set([...d.filterValues.callers, ...(f.caller ? [f.caller] : [])])]
  const older = d.calls.nextCursor === null
    ? ""
    : `<a rel="next" href="/dashboard${esc(query({ ...filterParams(d, f), before: d.calls.nextCursor }))}#calls">Older calls</a>`
  const newest = d.calls.calls.length > 0 && d.before !== undefined
    ? `<a href="/dashboard${esc(query(filterParams(d, f)))}#calls">Newest calls</a>`
    : ""
  return `<section id="calls" aria-labelledby="calls-title"><h2 id="calls-title">Calls</h2>
${table("top-title", `The 10 most expensive calls, last ${d.days} days`, callHead, d.mostExpensive.map((r) => callRow(toCall(r))), "", "rows")}
<h3 id="latest-title">Latest calls</h3>
<form class="filters" method="get" action="/dashboard#calls" aria-labelledby="latest-title">
<input type="hidden" name="days" value="${d.days}">
${select("model", "Model", models, f.model)}
${select("status", "Status", ["success", "error"], f.status)}
${select("purpose", "Purpose", purposes, f.purpose)}
${select("caller", "Caller", callers, f.caller)}
<div class="field"><button type="submit">Show calls</button></div>
</form>
${table("latest-caption", `Latest calls${d.calls.calls.length === 0 ? ": none match" : ""}, newest first`, callHead, d.calls.calls.map(callRow), "", "rows")}
<nav class="pager" aria-label="Pages of calls">${newest}${older}</nav>
</section>`
}

const stateText = {
  circuit: (s: LiveState["circuit"]) =>
    s === "closed" ? "closed (calls go upstream)" : s === "open" ? "open (upstream not called until the cooldown ends)" : "half-open (one probe call decides)",
  paused: (ms: number | null) => (ms === null ? "not paused" : `paused until ${new Date(ms).toISOString()}`)
}

export const liveFields = (l: LiveState): Record<string, string> => ({
  ai: l.ai.detail,
  circuit: stateText.circuit(l.circuit),
  queue: `${l.rateLimiter.queueDepth} waiting, ${l.rateLimiter.inFlight} in flight`,
  paused: stateText.paused(l.rateLimiter.pausedUntilMs),
  mode: l.rateLimiter.mode,
  spool: `${l.spoolDepth} row${l.spoolDepth === 1 ? "" : "s"} waiting for the database`,
  at: l.at
})

const liveSection = (d: Dashboard) => {
  const f = liveFields(d.live)
  const item = (key: string, label: string) => `<dt>${esc(label)}</dt><dd data-live="${key}">${esc(f[key]!)}</dd>`
  return `<section id="live" aria-labelledby="live-title"><h2 id="live-title">Live state</h2>
<dl class="facts live" data-ai="${d.live.ai.on ? "on" : "off"}" data-circuit="${d.live.circuit}">
${item("ai", "AI")}${item("circuit", "Circuit")}${item("queue", "Rate limiter queue")}${item("paused", "Provider pause")}${item("mode", "Rate limit window")}${
    item("spool", "Ledger spool")
  }${item("at", "As of (UTC)")}
</dl>
<p class="muted" id="live-note">Refreshed every few seconds while JavaScript is on; reload the page otherwise.</p>
</section>`
}

const exportsSection = (d: Dashboard) => {
  const to = d.today
  return `<section aria-labelledby="exports-title"><h2 id="exports-title">Exports</h2>
<p>CSV with the same figures as the JSON API, costs as exact decimal text and an unknown cost as an empty cell.</p>
<ul>
<li><a href="/dashboard/export/usage.csv${esc(query({ from: d.from, to, groupBy: "day" }))}">Spend per day, last ${d.days} days</a> (<code>GET /v1/usage?format=csv&amp;groupBy=day</code>)</li>
<li><a href="/dashboard/export/usage.csv${esc(query({ from: d.from, to, groupBy: "model" }))}">Spend per model, last ${d.days} days</a> (<code>GET /v1/usage?format=csv&amp;groupBy=model</code>)</li>
<li><a href="/dashboard/export/calls.csv${esc(query({ limit: "500", model: d.filter.model, status: d.filter.status, purpose: d.filter.purpose, caller: d.filter.caller }))}">The latest 500 calls${
    d.filter.model || d.filter.status || d.filter.purpose || d.filter.caller ? " matching the filter" : ""
  }</a> (<code>GET /v1/usage/calls?format=csv</code>, next page's cursor in <code>X-Next-Cursor</code>)</li>
</ul>
</section>`
}

const layout = (title: string, body: string, options: { readonly script: boolean; readonly logout: boolean }) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
${options.script ? `<link rel="stylesheet" href="/dashboard/assets/uPlot.min.css">\n<script src="/dashboard/assets/uPlot.iife.min.js" defer></script>\n<script src="/dashboard/assets/dashboard.js" defer></script>` : ""}
</head>
<body>
<header class="top"><div class="wrap"><p class="brand">policy-summarizer</p>${
  options.logout ? `<form method="post" action="/dashboard/logout"><button type="submit">Log out</button></form>` : ""
}</div></header>
<main class="wrap">
${body}
</main>
</body>
</html>
`

export const page = (d: Dashboard, options: { readonly logout: boolean }) =>
  layout(
    "Spend dashboard · policy-summarizer",
    `<h1>Spend dashboard</h1>
<p class="muted">From the cost ledger, exact to the last decimal; days and months in UTC. Generated ${time(d.generatedAt)}.</p>
<nav class="toc" aria-label="Sections"><a href="#budgets-title">Budgets</a><a href="#spend">Spend over time</a><a href="#outcomes-title">Outcomes</a><a href="#calls">Calls</a><a href="#live">Live state</a><a href="#exports-title">Exports</a></nav>
${budgetsSection(d)}
${spendSection(d)}
${outcomesSection(d)}
${callsSection(d)}
${liveSection(d)}
${exportsSection(d)}`,
    { script: true, logout: options.logout }
  )

export const loginPage = (error: string | null) =>
  layout(
    "Log in · policy-summarizer dashboard",
    `<h1>Spend dashboard</h1>
<form class="login" method="post" action="/dashboard/login">
<h2>Log in</h2>
${error === null ? "" : `<p class="error" role="alert">${esc(error)}</p>`}
<div class="field"><label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required></div>
<p class="muted">The token of <code>API_TOKEN</code>. It is checked once and never stored in the browser; a session cookie keeps you logged in for 8 hours.</p>
<div class="field"><button type="submit">Log in</button></div>
</form>`,
    { script: false, logout: false }
  )

export const errorPage = (message: string) =>
  layout("Dashboard unavailable · policy-summarizer", `<h1>Spend dashboard</h1><p class="error" role="alert">${esc(message)}</p>`, {
    script: false,
    logout: false
  })
