/**
 * The page's script, served as `/dashboard/assets/dashboard.js`. Kept as text so `npm start`'s one
 * esbuild run carries it and nothing else is built; it only enhances a page that already shows
 * every figure: the chart (uPlot) and the live state's refresh.
 */
export const clientScript = String.raw`"use strict";
(function () {
  // Okabe-Ito: told apart by most forms of colour blindness.
  var palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F6A00", "#000000"];

  // A model keeps its colour from one view to the next (30 or 90 days): picked from its name,
  // moved on to the next free colour only when two models of the view would share one.
  function coloursFor(models) {
    var taken = {};
    return models.map(function (model) {
      var h = 0;
      for (var i = 0; i < model.length; i++) h = (h * 31 + model.charCodeAt(i)) >>> 0;
      var at = h % palette.length;
      for (var n = 0; n < palette.length && taken[at]; n++) at = (at + 1) % palette.length;
      taken[at] = true;
      return palette[at];
    });
  }

  function utcDay(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 10);
  }

  function chart() {
    var el = document.getElementById("chart");
    var source = document.getElementById("chart-data");
    if (!el || !source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    var xs = data.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
    var n = data.series.length;
    var values = data.series.map(function (s) { return s.costUsd.map(Number); });
    // Stacked by drawing each model's bar from the ground up to the sum of it and the models after
    // it, tallest first: the floats only place pixels, the legend shows the exact decimal text.
    var stacked = values.map(function (_, i) {
      return xs.map(function (_, j) {
        var t = 0;
        for (var k = i; k < n; k++) t += values[k][j];
        return t;
      });
    });
    // A known part of zero beside calls of unknown cost is not shown as zero: the cost is unknown.
    var spend = function (usd, unknown, suffix) {
      if (unknown === 0) return usd + " USD" + suffix;
      var calls = "unknown (" + unknown + (unknown === 1 ? " call)" : " calls)");
      return usd === "0" ? calls + suffix : usd + " USD" + suffix + " + " + calls;
    };
    // Off the chart the legend gives each model's period total; on a day, that day's exact spend.
    var exact = function (si, idx) {
      var s = data.series[si - 1];
      return idx == null
        ? spend(s.totalUsd, s.totalUnknownCostCalls, " in " + xs.length + " days")
        : spend(s.costUsd[idx], s.unknownCostCalls[idx], "");
    };
    var colours = coloursFor(data.series.map(function (s) { return s.model; }));
    var series = [{ label: "Day (UTC)", value: function (u, v) { return v == null ? "all" : utcDay(v); } }].concat(
      data.series.map(function (s, i) {
        var colour = colours[i];
        return {
          label: s.model,
          stroke: colour,
          fill: colour,
          width: 0,
          paths: uPlot.paths.bars({ size: [0.8, 48], align: 0 }),
          points: { show: false },
          value: function (u, v, si, idx) { return exact(si, idx); }
        };
      })
    );
    var size = function () { return { width: Math.max(280, el.clientWidth), height: el.clientWidth < 500 ? 220 : 300 }; };
    var opts = Object.assign(size(), {
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      series: series,
      scales: {
        x: { time: true, range: function (u, min, max) { return [min - 43200, max + 43200]; } },
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } }
      },
      axes: [
        { space: 60 },
        { size: 70, values: function (u, ticks) { return ticks.map(function (t) { return "$" + t; }); } }
      ],
      legend: { live: true },
      cursor: { points: { show: false }, drag: { x: false, y: false } }
    });
    var plot = new uPlot(opts, [xs].concat(stacked), el);
    var canvas = plot.root.querySelector(".u-wrap");
    if (canvas) {
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", "Daily spend by model, stacked, " + xs.length + " days; the figures are in the tables below");
    }
    el.setAttribute("data-series", String(n));
    el.setAttribute("data-points", String(xs.length));
    el.setAttribute("data-rendered", "true");
    window.addEventListener("resize", function () { plot.setSize(size()); });
  }

  function live() {
    var list = document.querySelector("dl.live");
    var note = document.getElementById("live-note");
    if (!list) return;
    var refresh = function () {
      fetch("/dashboard/live", { credentials: "same-origin", headers: { accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) {
            if (note) note.textContent = "Your session has ended: reload the page to log in again.";
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (state) {
          if (!state) return;
          Object.keys(state.fields).forEach(function (key) {
            var dd = list.querySelector('[data-live="' + key + '"]');
            if (dd && dd.textContent !== state.fields[key]) dd.textContent = state.fields[key];
          });
          list.setAttribute("data-ai", state.ai);
          list.setAttribute("data-circuit", state.circuit);
          if (note) note.textContent = "Refreshed every 3 seconds.";
        })
        .catch(function () {
          if (note) note.textContent = "The service did not answer the last refresh; retrying.";
        });
    };
    setInterval(refresh, 3000);
  }

  function start() {
    chart();
    live();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
`

export const stylesheet = String.raw`:root {
  --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --accent: #0969da; --ok: #1a7f37; --bad: #b3261e; --warn: #8a5a00; --reserved: #9ec5fe;
  color-scheme: light;
}
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
.wrap { max-width: 1360px; margin: 0 auto; padding: 0 16px; }
header.top { background: #24292f; color: #fff; }
header.top .wrap { display: flex; align-items: center; justify-content: space-between; min-height: 48px; }
header.top .brand { margin: 0; font-weight: 600; }
header.top button { background: transparent; color: #fff; border: 1px solid #8c959f; }
h1 { font-size: 1.75rem; margin: 20px 0 4px; }
h2 { font-size: 1.35rem; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 0 0 6px; }
.muted { color: var(--muted); }
.toc, .switch, .pager { display: flex; flex-wrap: wrap; gap: 8px 16px; margin: 8px 0 12px; }
a { color: var(--accent); }
.switch a { padding: 4px 12px; border: 1px solid var(--line); border-radius: 16px; text-decoration: none; }
.switch a[aria-current] { background: var(--accent); color: #fff; border-color: var(--accent); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(235px, 1fr)); gap: 12px; }
.stack > .scroll { margin-bottom: 16px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); gap: 16px; align-items: start; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--panel); min-width: 0; }
.big { font-size: 1.25rem; font-weight: 600; margin: 0 0 4px; overflow-wrap: break-word; }
.big .muted { font-weight: 400; font-size: 1rem; }
.unknown { color: var(--warn); font-weight: 600; }
td .plus { display: block; font-size: 0.85em; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
.sent { color: var(--ok); font-weight: 600; }
.due { color: var(--warn); font-weight: 600; }
svg.bar { display: block; width: 100%; height: 28px; margin: 6px 0; }
svg.bar .track { fill: #eaeef2; }
svg.bar .spent { fill: var(--accent); }
svg.bar .spent.over { fill: var(--bad); }
svg.bar .reserved { fill: var(--reserved); }
svg.bar .mark { stroke: #57606a; stroke-width: 3; }
svg.bar .mark.sent { stroke: var(--ok); stroke-width: 5; }
svg.bar .mark.cap { stroke: var(--bad); stroke-width: 5; }
ul.levels { list-style: none; padding: 0; margin: 4px 0 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 4px 0 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: break-word; min-width: 0; }
.card dl.facts { grid-template-columns: 1fr; }
.card dl.facts dt { margin-top: 4px; }
.card dl.facts dd { font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; max-width: 100%; margin: 8px 0; }
.scroll:focus { outline: 2px solid var(--accent); outline-offset: 2px; }
table { border-collapse: collapse; font-size: 0.925rem; }
table.rows { width: 100%; }
table.figures { min-width: min(100%, 640px); }
.grid2 table.figures { width: 100%; }
.grid + .grid { margin-top: 12px; }
.grid.budgets { align-items: start; }
th.num { text-align: right; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; white-space: nowrap; }
tbody th { white-space: normal; min-width: 9em; }
thead th { background: var(--panel); }
tfoot th, tfoot td { font-weight: 600; border-top: 2px solid var(--line); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart-figure { margin: 8px 0 16px; }
.chart { width: 100%; min-height: 40px; }
figcaption { color: var(--muted); font-size: 0.9rem; }
.chart .u-legend { font-size: 0.85rem; text-align: left; max-width: 100%; margin: 4px 0; }
.u-legend.u-inline .u-series { display: block; }
.u-legend .u-series > * { padding: 1px 4px; }
.u-legend .u-value { overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
form.filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; margin: 8px 0; }
.field { display: flex; flex-direction: column; gap: 2px; }
label { font-weight: 600; font-size: 0.9rem; }
select, input, button { font: inherit; padding: 6px 10px; border: 1px solid #8c959f; border-radius: 6px; background: #fff; color: var(--fg); }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
button:focus-visible, a:focus-visible, select:focus-visible, input:focus-visible { outline: 3px solid #fd8c73; outline-offset: 1px; }
form.login { max-width: 420px; border: 1px solid var(--line); border-radius: 8px; padding: 16px; margin: 24px 0; }
form.login h2 { border: 0; margin-top: 0; padding: 0; }
.error { color: var(--bad); font-weight: 600; }
code { font-size: 0.9em; background: var(--panel); padding: 0 3px; border-radius: 3px; }
@media (max-width: 600px) {
  body { font-size: 15px; }
  h1 { font-size: 1.45rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dt { margin-top: 6px; }
}
`
