// The dashboard's static files, all served by frontline itself (no CDN):
// its stylesheet, the chart script, and uPlot's own files read from its npm
// package at start. The chart script reads the numbers a page already shows
// (data attributes), so every page shows its data without JavaScript.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface Asset {
  type: string;
  body: string;
}

const CSS = `
:root { --fg:#1d232a; --muted:#5b6670; --line:#d5dbe0; --bg:#fff; --band:#f4f6f8; --accent:#0b5cad; --bad:#b3261e; --ok:#1b6e3a; --warn:#8a5a00; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:1.5em; align-items:center; padding:.6em 1.2em; background:#12263a; color:#fff; flex-wrap:wrap; }
header a { color:#cfe3f7; text-decoration:none; margin-right:1em; }
header a[aria-current] { color:#fff; font-weight:600; border-bottom:2px solid #fff; }
.brand { font-size:1.1em; }
.session { margin-left:auto; }
.session button { font-size:.9em; }
main { padding:1em 1.2em 3em; max-width:1200px; }
h1 { font-size:1.4em; margin:.3em 0 .6em; }
h2 { font-size:1.1em; margin:1.4em 0 .5em; }
table { border-collapse:collapse; width:100%; margin:.4em 0 1em; }
th, td { text-align:left; padding:.3em .5em; border-bottom:1px solid var(--line); vertical-align:top; overflow-wrap:anywhere; }
th { background:var(--band); font-weight:600; }
td.num, th.num { text-align:right; white-space:nowrap; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(320px, 1fr)); gap:0 2em; }
.notice { padding:.5em .8em; border-radius:4px; }
.notice.ok { background:#e4f4ea; color:var(--ok); }
.notice.error { background:#fbe9e7; color:var(--bad); }
.muted { color:var(--muted); }
.action-reject, .action-defer { color:var(--bad); font-weight:600; }
.action-accept { color:var(--ok); }
.action-greylist, .action-tarpit, .action-tag { color:var(--warn); font-weight:600; }
form.inline { display:inline; }
form.row { display:flex; gap:.5em; flex-wrap:wrap; align-items:end; margin:.5em 0 1em; }
form.row label { display:flex; flex-direction:column; font-size:.9em; color:var(--muted); }
input, select, textarea, button { font:inherit; }
input[type=text], input[type=search], input[type=password], select { padding:.25em .4em; border:1px solid #9aa6b1; border-radius:3px; }
button { padding:.25em .7em; border:1px solid #6b7c8c; border-radius:3px; background:#eef2f5; cursor:pointer; }
button.danger { border-color:var(--bad); color:var(--bad); }
textarea { width:100%; min-height:14em; font-family:ui-monospace, monospace; font-size:13px; }
.decision { border:1px solid var(--line); border-radius:4px; padding:.6em .9em; margin:.8em 0; }
.decision h3 { margin:0 0 .3em; font-size:1em; }
.decision dl { display:grid; grid-template-columns:9em 1fr; gap:.15em .8em; margin:.3em 0; }
.decision dt { color:var(--muted); }
.decision dd { margin:0; overflow-wrap:anywhere; }
.remedy { background:#eef5fc; padding:.4em .7em; border-left:3px solid var(--accent); }
.chart { min-height:260px; }
.tabs a { margin-right:1em; }
.tabs a[aria-current] { font-weight:600; }
pre { background:var(--band); padding:.6em; overflow:auto; }
code { font-family:ui-monospace, monospace; font-size:.95em; }
.login { max-width:360px; margin:4em auto; }
.login label { display:block; margin:.6em 0; }
.login input { width:100%; }
`;

// Draws each .chart element from its data-x (unix seconds) and data-series
// ({"label": [counts…]}) attributes with uPlot; the table beside it stays.
const CHARTS_JS = `
(function () {
  'use strict';
  var colours = { accepted: '#1b6e3a', refused: '#b3261e', deferred: '#d97706', greylisted: '#7c3aed' };
  function draw(el) {
    var xs = JSON.parse(el.getAttribute('data-x') || '[]');
    var series = JSON.parse(el.getAttribute('data-series') || '{}');
    var names = Object.keys(series);
    var data = [xs];
    var opts = { width: Math.max(320, el.clientWidth || 800), height: 240, series: [{}], axes: [{}, { label: el.getAttribute('data-unit') || '' }], scales: { x: { time: true } } };
    names.forEach(function (n) {
      data.push(series[n]);
      opts.series.push({ label: n, stroke: colours[n] || '#334155', width: 2, points: { show: false } });
    });
    el.textContent = '';
    new uPlot(opts, data, el);
  }
  function start() {
    if (typeof uPlot === 'undefined') return;
    var els = document.querySelectorAll('.chart[data-series]');
    for (var i = 0; i < els.length; i++) draw(els[i]);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
`;

function uplotFile(name: string): string {
  const main = createRequire(import.meta.url).resolve('uplot');
  return readFileSync(join(dirname(main), name), 'utf8');
}

/** Every asset by its path under /assets/. */
export function loadAssets(): Map<string, Asset> {
  return new Map<string, Asset>([
    ['dashboard.css', { type: 'text/css; charset=utf-8', body: CSS }],
    ['charts.js', { type: 'text/javascript; charset=utf-8', body: CHARTS_JS }],
    ['uplot.js', { type: 'text/javascript; charset=utf-8', body: uplotFile('uPlot.iife.min.js') }],
    ['uplot.css', { type: 'text/css; charset=utf-8', body: uplotFile('uPlot.min.css') }],
  ]);
}
