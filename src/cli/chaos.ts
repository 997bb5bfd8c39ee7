/** What the `chaos` commands share: running a scenario with live progress and Ctrl-C, and rendering. */
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "@oclif/core";
import type { NatsOptions } from "../core/nats/connection.js";
import type { FaultWindow } from "../core/chaos/nemesis.js";
import { assertWritableDir, writeReport } from "../core/chaos/report.js";
import { runChaos, type ChaosResult, type Progress } from "../core/chaos/runner.js";
import type { Scenario } from "../core/chaos/scenario.js";
import { c, keyValueTable, StatusLine, table } from "./render.js";

export function scenariosDir(config: Config): string {
  return join(config.root, "scenarios");
}

export interface ScenarioRunOptions {
  config: Config;
  seed: number;
  orders?: number;
  unsafe: boolean;
  /** The workers' handler module (absolute), instead of the scenario's. */
  handler?: string;
  external?: NatsOptions;
  reportDir?: string;
  /** Keep the servers' stores and logs and the workers' logs even when the run is valid. */
  keep: boolean;
  /** Live progress and fault lines on a TTY (never with --json). */
  interactive: boolean;
}

function progressLine(name: string, p: Progress): string {
  return (
    `${c.bold(name)} ${(p.elapsedMs / 1000).toFixed(0)}s ${p.phase}  accepted ${p.accepted}  ` +
    `${c.green("ledger")} ${p.ledgerWrites}  ${c.yellow("dlq")} ${p.deadLettered}  backlog ${p.backlog}  ${c.red("faults")} ${p.faults}`
  );
}

function faultLine(w: FaultWindow): string {
  const mark = w.observed ? c.red("✗") : c.dim("·");
  return `${mark} ${(w.startMs / 1000).toFixed(1)}s ${w.kind} ${w.target}: ${w.detail}`;
}

/** Runs one scenario; Ctrl-C aborts it, and a second Ctrl-C exits at once (exit hooks kill children). */
export async function runScenario(scenario: Scenario, o: ScenarioRunOptions): Promise<ChaosResult> {
  if (o.reportDir) assertWritableDir(o.reportDir);
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const status = new StatusLine();
  let last: Progress | undefined;
  if (o.interactive) status.start(() => (last ? progressLine(scenario.name, last) : `${scenario.name}: starting`));
  const printAbove = (text: string) => {
    if (!o.interactive) return;
    process.stderr.write(`\r\x1b[K${text}\n`);
  };
  // An INVALID run keeps its evidence even without --report: somewhere it can be found, and said.
  const evidenceDir = o.reportDir ?? join(tmpdir(), `orderq-chaos-${scenario.name}-${o.seed}-${Date.now().toString(36)}`);
  try {
    const { result, history, workerEvents } = await runChaos(scenario, {
      seed: o.seed,
      orders: o.orders,
      unsafe: o.unsafe,
      handler: o.handler,
      external: o.external,
      cliScript: join(o.config.root, "bin", "run.js"),
      signal: controller.signal,
      evidence: { dir: evidenceDir, always: o.keep },
      events: {
        onProgress: (p) => (last = p),
        onFault: (w) => printAbove(faultLine(w)),
        onNote: (text) => printAbove(c.dim(text)),
      },
    });
    const reportDir = o.reportDir ?? result.evidence;
    if (reportDir) {
      const files = writeReport(reportDir, result, history, workerEvents);
      if (o.interactive) printAbove(c.dim(`report: ${files.join(", ")}`));
    }
    return result;
  } finally {
    status.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export function verdict(valid: boolean): string {
  return valid ? c.green.bold("VALID") : c.red.bold("INVALID");
}

export function renderResult(r: ChaosResult): string {
  const k = r.check.categories;
  const sample = (ids: string[]) => (ids.length ? ids.slice(0, 5).join(" ") + (ids.length > 5 ? " …" : "") : "");
  const rows: (string | number)[][] = (
    [
      ["ok", "committed exactly once"],
      ["recovered", "indeterminate publish, processed once"],
      ["deadLetteredExpected", "marked order, dead-lettered once"],
      ["deadLetteredUnexpected", "ordinary order, dead-lettered once"],
      ["lost", "accepted, never processed"],
      ["brokerLost", "lost, and the broker lost an acknowledged write of it"],
      ["duplicated", "processed more than once"],
      ["unexpected", "processed, never (surely) published"],
      ["stuck", "still in the stream"],
      ["unresolved", "indeterminate, not processed"],
      ["notStored", "publish surely failed"],
    ] as const
  ).map(([cat, meaning]) => [cat, k[cat].count, meaning, sample(k[cat].ids)]);
  const byKind = Object.entries(r.faults.byKind)
    .map(([kind, n]) => `${kind} ${n.observed}/${n.injected}`)
    .join(", ");
  const e = r.effects;
  const summary = keyValueTable([
    ["scenario", `${r.scenario}${r.unsafe ? " (unsafe negative control)" : ""}`],
    ["seed", r.seed],
    ["orders", `${r.orders} (${r.check.accepted} accepted)`],
    ["elapsed", `${(r.elapsedMs / 1000).toFixed(1)} s${r.timedOut ? " (time limit reached)" : ""}`],
    [
      "faults observed",
      `${r.faults.observed}${byKind ? `: ${byKind}` : ""}; self-crashes ${r.faults.selfCrashes}, dropped acks ${r.faults.droppedAcks}, marked orders ${r.faults.markedOrders}, re-sends ${r.faults.resends}`,
    ],
    [
      "redeliveries",
      `${e.redeliveries} (ledger writes on redelivery ${e.ledgerWritesOnRedelivery}, absorbed by the ledger ${e.suppressedDuplicates}); naks ${e.naks}`,
    ],
    ["producer", `retries ${e.producerRetries}, duplicates absorbed by the stream ${e.duplicatePubAcks}, indeterminate ${e.indeterminatePublishes}`],
    ["workers", `restarts ${e.workerRestarts}, errors ${e.workerErrors}`],
    ...(r.inbox
      ? [
          [
            "inbox",
            `${r.inbox.table} (ledger of record): ${r.inbox.committed} committed, ${r.inbox.deadLettered} dead-lettered; handler ${r.inbox.handler}`,
          ] as [string, string],
        ]
      : []),
    ...(r.gateways
      ? [
          [
            "gateways",
            `${r.gateways.urls.length}${r.unsafe ? " (unsafe: no key store)" : ""}: ${r.gateways.urls.join(", ")}; killed ${r.gateways.killed}, restarted ${r.gateways.restarts}`,
          ] as [string, string],
        ]
      : []),
    ...(r.scaling.length ? [["autoscaler", r.scaling.map((x) => `${x.from} → ${x.to}`).join(", ")] as [string, string]] : []),
    ...(r.check.residue.count > 0
      ? [
          [
            "residue",
            `${r.check.residue.count} processed orders still in the stream after a broker crash (not redelivered): ${sample(r.check.residue.ids)}`,
          ] as [string, string],
        ]
      : []),
    ["latency", `p50 ${r.timeline.latency.p50} ms, p99 ${r.timeline.latency.p99} ms, max ${r.timeline.latency.max} ms`],
    ...(r.evidence
      ? [
          [
            "evidence",
            `${r.evidence}: servers' stores and logs, workers' logs, history, and the ledger, DLQ and ORDERS as the checker read them`,
          ] as [string, string],
        ]
      : []),
  ]);
  const expectations = r.check.expectations.map((x) => `${x.ok ? c.green("✓") : c.red("✗")} ${x.name}: ${x.detail}`).join("\n");
  const broker = brokerLine(r);
  return [
    summary,
    table(["outcome", "count", "meaning", "sample ids"], rows),
    ...renderEffects(r),
    expectations,
    ...(broker ? [broker] : []),
    `${verdict(r.valid)} ${r.scenario}${r.why.length ? `: ${r.why.join("; ")}` : ""}`,
  ].join("\n");
}

/** One line when the broker lost acknowledged writes or renumbered ORDERS (proven from its answers), else undefined. */
export function brokerLine(r: ChaosResult): string | undefined {
  const { count, byStream, samples, renumbered } = r.check.brokerLostWrites;
  if (count === 0 && renumbered === 0) return undefined;
  const diverged = renumbered ? `ORDERS delivered ${renumbered} orders from other sequences than it acknowledged (its replicas disagreed)` : "";
  if (count === 0) return `${c.yellow("!")} ${diverged}; no acknowledged write lost`;
  const streams = Object.entries(byStream)
    .map(([stream, n]) => `${stream} ${n}`)
    .join(", ");
  const first = samples[0];
  const orders = r.check.categories.brokerLost.count;
  return (
    `${c.red("✗")} the broker lost ${count} acknowledged writes (${streams}; e.g. ${first.stream} seq ${first.seq} of ${first.id}: ${first.proof}), ` +
    `${orders ? `and with them ${orders} orders` : "all absorbed: no order lost"}${diverged ? `; ${diverged}` : ""}`
  );
}

/** One row per seed, for `chaos soak`. */
export function renderSoak(results: ChaosResult[], errors: { seed: number; error: string }[] = []): string {
  const failed = errors.map((e) => [e.seed, c.red.bold("ERROR"), e.error.slice(0, 120), "", "", "", "", "", "", "", "", ""]);
  return table(
    [
      "seed",
      "verdict",
      "ok",
      "dead-lettered (unexpected)",
      "lost",
      "broker lost (writes)",
      "duplicated",
      "unexpected",
      "stuck",
      "faults",
      "time",
      "evidence",
    ],
    results
      .map((r) => {
        const k = r.check.categories;
        return [
          r.seed,
          r.valid ? verdict(true) : r.check.brokerExplained ? c.yellow.bold("BROKER") : verdict(false),
          k.ok.count + k.recovered.count,
          `${k.deadLetteredExpected.count + k.deadLetteredUnexpected.count} (${k.deadLetteredUnexpected.count})`,
          k.lost.count,
          `${k.brokerLost.count} (${r.check.brokerLostWrites.count})`,
          k.duplicated.count,
          k.unexpected.count,
          k.stuck.count,
          r.faults.observed,
          `${(r.elapsedMs / 1000).toFixed(1)} s${r.timedOut ? " (limit)" : ""}`,
          r.evidence ?? "",
        ];
      })
      .concat(failed)
      .sort((a, b) => Number(a[0]) - Number(b[0])),
  );
}

/** The effect check of an inbox run (examples/postgres-orders' tables): a table like the ledger's. */
function renderEffects(r: ChaosResult): string[] {
  const e = r.inbox?.effects;
  if (!e) return [];
  const k = e.categories;
  const sample = (ids: string[]) => (ids.length ? ids.slice(0, 5).join(" ") + (ids.length > 5 ? " …" : "") : "");
  const rows = (
    [
      ["ok", "committed, its effects once"],
      ["lostEffects", "committed or accepted: no row, or too few units taken (stock:<sku>: down too little)"],
      ["duplicatedEffects", "several rows, or too many units taken (stock:<sku>: down too much)"],
      ["unexpectedEffects", "a row or units taken, yet never committed"],
    ] as const
  ).map(([cat, meaning]) => [cat, k[cat].count, meaning, sample(k[cat].ids)]);
  const shown = (lines: string[], n: number) => `${lines.slice(0, n).join("; ")}${lines.length > n ? " …" : ""}`;
  // One entry per order: "o3 took book-001 4 (items 2), tea-077 2 (items 1)".
  const byOrder = new Map<string, string[]>();
  for (const d of e.movements) byOrder.set(d.orderId, [...(byOrder.get(d.orderId) ?? []), `${d.sku} ${d.actual} (items ${d.expected})`]);
  const orders = [...byOrder].map(([id, skus]) => `${id} took ${skus.join(", ")}`);
  const drift = e.stock.map((d) => `${d.sku}: down ${d.actual}, committed orders hold ${d.expected}`);
  return [
    `${c.bold("effects")} in the handler's tables (${e.committed} committed orders in the inbox): ${e.valid ? c.green("exactly once") : c.red("NOT exactly once")}`,
    table(["effect", "count", "meaning", "sample ids"], rows),
    ...(orders.length ? [`order drift: ${shown(orders, 5)}`] : []),
    ...(drift.length ? [`stock drift: ${shown(drift, 8)}`] : []),
  ];
}

/** One row per scenario, for `chaos all`. */
export function renderSummary(results: ChaosResult[]): string {
  return table(
    [
      "scenario",
      "verdict",
      "orders",
      "ok",
      "dead-lettered",
      "lost",
      "broker lost",
      "duplicated",
      "unexpected",
      "stuck",
      "effects lost/dup/unexp",
      "faults",
      "redeliveries",
      "time",
      "why invalid",
    ],
    results.map((r) => {
      const k = r.check.categories;
      return [
        r.scenario,
        verdict(r.valid),
        r.orders,
        k.ok.count + k.recovered.count,
        k.deadLetteredExpected.count + k.deadLetteredUnexpected.count,
        k.lost.count,
        k.brokerLost.count,
        k.duplicated.count,
        k.unexpected.count,
        k.stuck.count,
        effectCounts(r),
        r.faults.observed,
        r.effects.redeliveries,
        `${(r.elapsedMs / 1000).toFixed(1)} s`,
        r.why.join("\n"),
      ];
    }),
  );
}

/** `lost/duplicated/unexpected` effects, or "-" when the run did not check them. */
function effectCounts(r: ChaosResult): string {
  const k = r.inbox?.effects?.categories;
  return k ? `${k.lostEffects.count}/${k.duplicatedEffects.count}/${k.unexpectedEffects.count}` : "-";
}
