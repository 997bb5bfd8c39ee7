/**
 * `--report DIR`: history.jsonl (the producer's events and the workers', in time order), result.json
 * and report.html — one self-contained page (inline SVG, no external assets) with the run's timeline,
 * each fault's window shaded and named, and each worker's lane (alive, paused, killed).
 */
import { accessSync, constants, mkdirSync, writeFileSync } from "node:fs";
import { InputError, errorMessage } from "../base/errors.js";
import { join } from "node:path";
import type { HistoryEvent } from "../pipeline/history.js";
import { CATEGORIES } from "./checker.js";
import { EFFECT_CATEGORIES } from "./effects.js";
import type { FaultWindow } from "./nemesis.js";
import type { ChaosResult } from "./runner.js";
import { mergeByTime, type WorkerEvent, type WorkerLane } from "./timeline.js";

/**
 * Creates `dir` if needed and checks that it is writable: InputError (exit 2) naming `flag` and the
 * reason, so an unwritable report directory fails before the run, not after it.
 */
export function assertWritableDir(dir: string, flag = "--report"): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new InputError(`${flag}: cannot write to ${dir}: ${errorMessage(err)}`);
  }
}

/** Writes the three files into `dir` (created if needed) and returns their paths. */
export function writeReport(dir: string, result: ChaosResult, history: HistoryEvent[], workerEvents: WorkerEvent[] = []): string[] {
  mkdirSync(dir, { recursive: true });
  const files = {
    history: join(dir, "history.jsonl"),
    result: join(dir, "result.json"),
    html: join(dir, "report.html"),
  };
  writeFileSync(
    files.history,
    mergeByTime(history, workerEvents)
      .map((e) => JSON.stringify(e))
      .join("\n") + "\n",
  );
  writeFileSync(files.result, JSON.stringify(result, null, 2) + "\n");
  writeFileSync(files.html, renderReport(result));
  return Object.values(files);
}

const escape = (text: string) => text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

const FAULT_COLOURS: Record<string, string> = {
  "kill-worker": "#d62728",
  "pause-worker": "#ff7f0e",
  "kill-server": "#9467bd",
  "cut-network": "#8c564b",
  "slow-network": "#bcbd22",
  "db-restart": "#17becf",
  "kill-gateway": "#e377c2",
};

interface Series {
  label: string;
  colour: string;
  values: (number | null)[];
}

const WIDTH = 960;
const HEIGHT = 240;
/** top leaves room for the fault windows' labels above the plot. */
const PAD = { left: 56, right: 16, top: 22, bottom: 28 };

/** The smallest "round" step (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k; whole below 10) at least `v`. */
function niceStep(v: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(v, 1e-9)));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    const step = m * p;
    if (step >= v && Number.isInteger(step)) return step;
  }
  return 10 * p;
}

/** Short names of the fault kinds, for the labels over the fault windows. */
const FAULT_LABELS: Record<string, string> = {
  "kill-worker": "kill",
  "pause-worker": "pause",
  "kill-server": "kill",
  "cut-network": "cut",
  "slow-network": "slow",
  "db-restart": "db restart",
  "kill-gateway": "kill",
};

/** Width of a character of the 11px labels, roughly, to keep labels from overlapping. */
const CHAR_W = 6;

/** A horizontal scale over the run's seconds; a time past the end is drawn at the end. */
function xScale(seconds: number): (sec: number) => number {
  const plotW = WIDTH - PAD.left - PAD.right;
  return (sec: number) => PAD.left + (plotW * Math.min(Math.max(0, sec), seconds)) / Math.max(1, seconds);
}

/**
 * The fault windows shaded over `top`..`top + height`, each named above the plot (`kill w2`) where
 * its label does not run into the previous one; every window's full description is its tooltip.
 */
function faultShades(windows: FaultWindow[], x: (sec: number) => number, top: number, height: number): { shades: string; labels: string } {
  let free = 0;
  const labels: string[] = [];
  const shades = windows
    .map((w) => {
      const x0 = x(w.startMs / 1000);
      const width = Math.max(2, x(w.endMs / 1000) - x0);
      const colour = FAULT_COLOURS[w.kind] ?? "#999";
      const label = `${FAULT_LABELS[w.kind] ?? w.kind} ${w.target}`;
      if (x0 >= free) {
        labels.push(`<text x="${x0.toFixed(1)}" y="${top - 4}" fill="${colour}" class="fault-label">${escape(label)}</text>`);
        free = x0 + label.length * CHAR_W + 6;
      }
      return `<rect x="${x0.toFixed(1)}" y="${top}" width="${width.toFixed(1)}" height="${height}" fill="${colour}" fill-opacity="${w.observed ? 0.22 : 0.08}"><title>${escape(`${w.kind} ${w.target} @${(w.startMs / 1000).toFixed(1)}s: ${w.detail}`)}</title></rect>`;
    })
    .join("");
  return { shades, labels: labels.join("") };
}

/** Seconds along the bottom, about a dozen of them, and the axis' name. */
function secondsAxis(x: (sec: number) => number, seconds: number, y: number): string {
  const step = Math.max(1, Math.ceil(seconds / 12));
  return (
    Array.from({ length: Math.floor(seconds / step) + 1 }, (_, i) => i * step)
      .map((sec) => `<text x="${x(sec)}" y="${y}" text-anchor="middle">${sec}s</text>`)
      .join("") + `<text x="${WIDTH - PAD.right}" y="${y + 14}" text-anchor="end" class="axis-name">seconds from the start of the run</text>`
  );
}

/**
 * A line chart over seconds, with the fault windows shaded behind the lines. A value whose neighbours
 * have none (a second alone between gaps, as the worst latencies often are) is a dot: a line needs two.
 */
function chart(title: string, unit: string, series: Series[], windows: FaultWindow[], seconds: number): string {
  // Four gridlines at round values, so a label names the line it stands on.
  const max = 4 * niceStep(Math.max(1, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))) / 4);
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = xScale(seconds);
  const y = (v: number) => PAD.top + plotH - (plotH * v) / max;
  const { shades, labels } = faultShades(windows, x, PAD.top, plotH);
  const lines = series
    .map((s) => {
      const segments: string[][] = [];
      let current: string[] = [];
      s.values.forEach((v, i) => {
        if (v === null) {
          if (current.length) segments.push(current);
          current = [];
        } else current.push(`${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`);
      });
      if (current.length) segments.push(current);
      return segments
        .map((pts) => {
          if (pts.length > 1) return `<polyline points="${pts.join(" ")}" fill="none" stroke="${s.colour}" stroke-width="1.8"/>`;
          const [cx, cy] = pts[0].split(",");
          return `<circle cx="${cx}" cy="${cy}" r="3" fill="${s.colour}" class="isolated"/>`;
        })
        .join("");
    })
    .join("");
  const ticks = Array.from({ length: 5 }, (_, i) => (max * i) / 4)
    .map(
      (v) =>
        `<text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text><line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
    )
    .join("");
  const legend = series.map((s) => `<span style="color:${s.colour}">■</span> ${escape(s.label)}`).join(" &nbsp; ");
  const height = HEIGHT + 14;
  return `<h2>${escape(title)} <small>(${escape(unit)})</small></h2><div class="legend">${legend}</div>
<svg viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${escape(title)}">${shades}${labels}${ticks}${secondsAxis(x, seconds, HEIGHT - 8)}${lines}
<line x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${PAD.top + plotH}" stroke="#888"/></svg>`;
}

const LANE_H = 22;
const LANE_COLOURS = { alive: "#2ca02c", paused: "#ff7f0e", killed: "#d62728", crashed: "#7f0000" } as const;

/**
 * One row per worker process (w1…, q1 the quarantine lane): a bar where it was alive, another colour
 * where it was paused, nothing where it had no process, and a cross where it died (killed by the
 * nemesis, or crashed by itself). Fault windows shaded behind, as in the other charts.
 */
function lanesChart(lanes: WorkerLane[], windows: FaultWindow[], seconds: number): string {
  if (lanes.length === 0) return "";
  const x = xScale(seconds);
  const top = PAD.top;
  const height = top + lanes.length * LANE_H + PAD.bottom + 14;
  const { shades, labels } = faultShades(windows, x, top, lanes.length * LANE_H);
  const rows = lanes
    .map((lane, i) => {
      const mid = top + i * LANE_H + LANE_H / 2;
      const bars = lane.segments
        .map((seg) => {
          const x0 = x(seg.fromMs / 1000);
          const width = Math.max(1, x(seg.toMs / 1000) - x0);
          return `<rect x="${x0.toFixed(1)}" y="${mid - 6}" width="${width.toFixed(1)}" height="12" fill="${LANE_COLOURS[seg.state]}" fill-opacity="0.75"><title>${escape(`${lane.worker} ${seg.state} ${(seg.fromMs / 1000).toFixed(1)}–${(seg.toMs / 1000).toFixed(1)} s`)}</title></rect>`;
        })
        .join("");
      const deaths = lane.deaths
        .map((d) => {
          const cx = x(d.atMs / 1000);
          const colour = LANE_COLOURS[d.cause];
          return `<path d="M${(cx - 5).toFixed(1)},${mid - 5} l10,10 m0,-10 l-10,10" stroke="${colour}" stroke-width="2.2" class="death"><title>${escape(`${lane.worker} ${d.cause === "killed" ? "killed by the nemesis" : "crashed by itself"} at ${(d.atMs / 1000).toFixed(1)} s`)}</title></path>`;
        })
        .join("");
      return `<text x="${PAD.left - 8}" y="${mid + 4}" text-anchor="end" class="lane-label">${escape(lane.worker)}</text><line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${mid}" y2="${mid}" stroke="#eee"/>${bars}${deaths}`;
    })
    .join("");
  const legend = [
    `<span style="color:${LANE_COLOURS.alive}">■</span> alive`,
    `<span style="color:${LANE_COLOURS.paused}">■</span> paused (SIGSTOP)`,
    `<span style="color:${LANE_COLOURS.killed}">✕</span> killed by the nemesis`,
    `<span style="color:${LANE_COLOURS.crashed}">✕</span> crashed by itself`,
    "gap: no process (until its replacement started)",
  ].join(" &nbsp; ");
  return `<h2>Worker processes, one lane each <small>(q1: the quarantine lane)</small></h2><div class="legend">${legend}</div>
<svg viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="Worker processes, one lane each">${shades}${labels}${rows}${secondsAxis(x, seconds, height - 22)}</svg>`;
}

function table(rows: [string, string | number][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(String(v))}</td></tr>`).join("")}</table>`;
}

/** report.html for a run: self-contained, every chart inline SVG. Pure. */
export function renderReport(r: ChaosResult): string {
  const t = r.timeline;
  const seconds = Math.max(t.accepted.length, Math.ceil(Math.max(0, ...r.faults.windows.map((w) => w.endMs)) / 1000), 1);
  const verdict = r.valid ? `<span class="ok">VALID</span>` : `<span class="bad">INVALID</span>`;
  const why = r.why.length ? `<h2>Why INVALID</h2><ul>${r.why.map((line) => `<li class="bad">${escape(line)}</li>`).join("")}</ul>` : "";
  const categories = CATEGORIES.map((c) => {
    const cat = r.check.categories[c];
    return `<tr><th>${c}</th><td>${cat.count}</td><td class="ids">${escape(cat.ids.join(" "))}</td></tr>`;
  }).join("");
  const expectations = r.check.expectations
    .map((e) => `<tr><th>${escape(e.name)}</th><td class="${e.ok ? "ok" : "bad"}">${e.ok ? "holds" : "FAILS"}</td><td>${escape(e.detail)}</td></tr>`)
    .join("");
  const faultRows = r.faults.windows
    .map(
      (w) =>
        `<tr><td>${(w.startMs / 1000).toFixed(1)}–${(w.endMs / 1000).toFixed(1)} s</td><td style="color:${FAULT_COLOURS[w.kind]}">${w.kind}</td><td>${escape(w.target)}</td><td>${w.observed ? "yes" : "no"}</td><td>${escape(w.detail)}</td></tr>`,
    )
    .join("");
  const legend = Object.entries(FAULT_COLOURS)
    .map(([kind, colour]) => `<span style="background:${colour};opacity:.5">&nbsp;&nbsp;&nbsp;</span> ${kind}`)
    .join(" &nbsp; ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orderq chaos: ${escape(r.scenario)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{margin-bottom:4px} h2{font-size:16px;margin:24px 0 4px} small{color:#777;font-weight:normal}
table{border-collapse:collapse;margin:8px 0} th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6;font-weight:600} .ids{font:12px monospace;color:#555;max-width:560px}
.ok{color:#1a7f37;font-weight:700} .bad{color:#cf222e;font-weight:700} svg{font:11px system-ui;fill:#555}
.legend{font-size:12px;color:#555} .grid{display:flex;gap:24px;flex-wrap:wrap}
.fault-label{font-size:11px;font-weight:600} .lane-label{font:12px monospace;fill:#222} .axis-name{fill:#777}
</style></head><body>
<h1>${escape(r.scenario)} — ${verdict}</h1>
${why}
<div>seed ${r.seed}${r.unsafe ? " · <b>unsafe negative control</b>" : ""} · ${r.orders} orders · ${r.servers || "external"} server(s) · ${(r.elapsedMs / 1000).toFixed(1)} s · started ${new Date(r.startedAt).toISOString()}</div>
<div class="legend" style="margin-top:8px">fault windows: ${legend} (pale: not observed)</div>
${chart(
  "Orders per second",
  "per second",
  [
    { label: "accepted", colour: "#1f77b4", values: t.accepted },
    { label: "committed", colour: "#2ca02c", values: t.committed },
    { label: "dead-lettered", colour: "#d62728", values: t.deadLettered },
    { label: "ledger writes on a redelivery", colour: "#ff7f0e", values: t.redelivered },
  ],
  r.faults.windows,
  seconds,
)}
${chart(
  "Publish-to-commit latency",
  "ms, of orders committed in each second",
  [
    { label: "p50", colour: "#17becf", values: t.latencyP50 },
    { label: "p99", colour: "#e377c2", values: t.latencyP99 },
  ],
  r.faults.windows,
  seconds,
)}
${chart("Worker processes", "running, sampled each second", [{ label: "workers", colour: "#9467bd", values: t.workers }], r.faults.windows, seconds)}
${lanesChart(t.workerLanes ?? [], r.faults.windows, seconds)}
<div class="grid"><div><h2>Latency</h2>${table([
    ["orders", t.latency.count],
    ["p50", `${t.latency.p50} ms`],
    ["p90", `${t.latency.p90} ms`],
    ["p99", `${t.latency.p99} ms`],
    ["max", `${t.latency.max} ms`],
  ])}</div>
<div><h2>Effects</h2>${table(Object.entries(r.effects) as [string, number][])}</div>
<div><h2>Producer</h2>${table(Object.entries(r.producer) as [string, string | number][])}</div></div>
<h2>Checker</h2><table><tr><th>category</th><th>count</th><th>sample ids</th></tr>${categories}</table>
${effectsSection(r)}
<h2>Expectations</h2><table>${expectations}</table>
<h2>Faults (${r.faults.observed} observed)</h2>
${table([
  ["worker self-crashes", r.faults.selfCrashes],
  ["dropped acks", r.faults.droppedAcks],
  ["marked orders (poison, fatal, crash, invalid)", r.faults.markedOrders],
  ["deliberate re-sends", r.faults.resends],
])}
<table><tr><th>window</th><th>kind</th><th>target</th><th>observed</th><th>detail</th></tr>${faultRows}</table>
${r.scaling.length ? `<h2>Autoscaler</h2><table>${r.scaling.map((x) => `<tr><td>${escape(x.time)}</td><td>${x.from} → ${x.to}</td><td>${escape(x.reason)}</td></tr>`).join("")}</table>` : ""}
</body></html>
`;
}

/** The effect check of an inbox run: the handler's tables against the inbox. */
function effectsSection(r: ChaosResult): string {
  const e = r.inbox?.effects;
  if (!e) return "";
  const rows = EFFECT_CATEGORIES.map(
    (c) => `<tr><th>${c}</th><td>${e.categories[c].count}</td><td class="ids">${escape(e.categories[c].ids.join(" "))}</td></tr>`,
  ).join("");
  const orders = e.movements
    .map((d) => `<tr><td>${escape(d.orderId)}</td><td>${escape(d.sku)}</td><td>${d.expected}</td><td>${d.actual}</td></tr>`)
    .join("");
  const drift = e.stock.map((d) => `<tr><td>${escape(d.sku)}</td><td>${d.expected}</td><td>${d.actual}</td></tr>`).join("");
  return `<h2>Effects <small>${e.committed} committed orders in ${escape(r.inbox?.table ?? "")}; handler ${escape(r.inbox?.handler ?? "")}</small> — ${e.valid ? '<span class="ok">exactly once</span>' : '<span class="bad">NOT exactly once</span>'}</h2>
<table><tr><th>category</th><th>count</th><th>sample ids</th></tr>${rows}</table>
${orders ? `<table><tr><th>order</th><th>SKU</th><th>units in its items</th><th>units its movements took</th></tr>${orders}</table>` : ""}
${drift ? `<table><tr><th>SKU</th><th>units in committed orders</th><th>stock went down by</th></tr>${drift}</table>` : ""}`;
}
