/**
 * The chaos report built from a small run, without servers: each worker's lane from its events, the
 * workers' events in history.jsonl beside the producer's, and report.html drawing what it must.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATEGORIES } from "../../src/core/chaos/checker.js";
import { checkEffects } from "../../src/core/chaos/effects.js";
import { renderResult } from "../../src/cli/chaos.js";
import type { FaultWindow } from "../../src/core/chaos/nemesis.js";
import { renderReport, writeReport } from "../../src/core/chaos/report.js";
import type { ChaosResult } from "../../src/core/chaos/runner.js";
import { buildTimeline, mergeByTime, workerLanes, type WorkerEvent } from "../../src/core/chaos/timeline.js";
import type { HistoryEvent } from "../../src/core/pipeline/history.js";
import type { LedgerWrite } from "../../src/core/pipeline/ledger.js";

const T0 = 1_700_000_000_000;
const at = (sec: number) => T0 + sec * 1000;
const ev = (event: WorkerEvent["event"], worker: string, sec: number, cause?: WorkerEvent["cause"]): WorkerEvent => ({
  type: "worker",
  event,
  worker,
  time: at(sec),
  ...(cause && { cause }),
});

/** w1 paused, resumed, killed and replaced; q1 crashes by itself and is not back before the end. */
const WORKER_EVENTS: WorkerEvent[] = [
  ev("start", "w1", 0),
  ev("start", "q1", 0),
  ev("pause", "w1", 1),
  ev("resume", "w1", 2),
  ev("kill", "w1", 3),
  ev("exit", "w1", 3.1, "nemesis"),
  ev("start", "w1", 3.5),
  ev("exit", "q1", 4, "self-crash"),
  ev("exit", "w1", 6, "stopped"),
];

describe("chaos report: worker lanes", () => {
  it("are alive, paused and gone where the events say, with each death and its cause", () => {
    const lanes = workerLanes(T0, WORKER_EVENTS, 8000);
    assert.deepEqual(lanes, [
      {
        worker: "w1",
        segments: [
          { state: "alive", fromMs: 0, toMs: 1000 },
          { state: "paused", fromMs: 1000, toMs: 2000 },
          { state: "alive", fromMs: 2000, toMs: 3100 },
          { state: "alive", fromMs: 3500, toMs: 6000 },
        ],
        deaths: [{ atMs: 3000, cause: "killed" }],
      },
      { worker: "q1", segments: [{ state: "alive", fromMs: 0, toMs: 4000 }], deaths: [{ atMs: 4000, cause: "crashed" }] },
    ]);
  });

  it("end a state still open at the end of the run there; a pause of a worker with no process changes nothing", () => {
    const lanes = workerLanes(T0, [ev("start", "w2", 1), ev("exit", "w2", 2, "nemesis"), ev("pause", "w2", 3), ev("start", "w2", 4)], 5000);
    assert.deepEqual(lanes[0].segments, [
      { state: "alive", fromMs: 1000, toMs: 2000 },
      { state: "alive", fromMs: 4000, toMs: 5000 },
    ]);
  });
});

describe("chaos report: history.jsonl", () => {
  it("holds the workers' events beside the producer's, in time order, the producer's order kept", () => {
    const producer = [
      { type: "invoke", time: at(1) },
      { type: "ok", time: at(3) },
      { type: "invoke", time: at(3) },
    ];
    const merged = mergeByTime(producer, [ev("start", "w1", 0), ev("kill", "w1", 3), ev("exit", "w1", 5, "nemesis")]);
    assert.deepEqual(
      merged.map((e) => `${e.type}${"event" in e ? `:${e.event}` : ""}@${(e.time - T0) / 1000}`),
      ["worker:start@0", "invoke@1", "ok@3", "invoke@3", "worker:kill@3", "worker:exit@5"],
    );
  });
});

/** A run of 5 seconds: orders committed in seconds 0–1 and 4, none in 2–3; one pause, one kill. */
function smallRun(): { result: ChaosResult; history: HistoryEvent[] } {
  const history: HistoryEvent[] = [];
  const ledger: LedgerWrite[] = [];
  const commit = (id: string, sentSec: number, commitSec: number) => {
    history.push({ type: "invoke", id, kind: "order", source: "web", resend: false, time: at(sentSec) });
    history.push({ type: "ok", id, seq: history.length, duplicate: false, tries: 1, time: at(sentSec) + 2 });
    ledger.push({
      orderId: id,
      seq: ledger.length + 1,
      outcome: { result: "committed", worker: "w1", attempt: 1, streamSeq: 1, at: "" },
      time: at(commitSec),
    });
  };
  commit("a", 0, 0.2);
  commit("b", 1, 1.1);
  // Alone in its second, between seconds with no commit: the worst latency of the run.
  commit("slow", 1.5, 4.6);
  const timeline = buildTimeline(T0, history, ledger, [], [2, 2, 2, 1, 2, 2], WORKER_EVENTS);
  const windows: FaultWindow[] = [
    { kind: "pause-worker", target: "w1", startMs: 1000, endMs: 2000, observed: true, detail: "SIGSTOP for 1000 ms, then SIGCONT" },
    { kind: "kill-worker", target: "w1", startMs: 3000, endMs: 3100, observed: true, detail: "SIGKILL; exit seen for 1 of 1" },
  ];
  const empty = { count: 0, ids: [] };
  const result = {
    scenario: "tiny",
    seed: 1,
    unsafe: false,
    orders: 3,
    servers: 1,
    valid: true,
    why: [],
    elapsedMs: 6000,
    startedAt: T0,
    timeline,
    faults: { windows, observed: 2, selfCrashes: 1, droppedAcks: 0, markedOrders: 0, resends: 0 },
    check: { categories: Object.fromEntries(CATEGORIES.map((c) => [c, empty])), expectations: [] },
    effects: {},
    producer: {},
    scaling: [],
  } as unknown as ChaosResult;
  return { result, history };
}

describe("chaos report: report.html", () => {
  it("draws a latency alone in its second as a dot (a line needs two points)", () => {
    const { result } = smallRun();
    assert.deepEqual(result.timeline.latencyP99, [200, 100, null, null, 3100]);
    const latency = renderReport(result)
      .split("<h2>")
      .find((part) => part.startsWith("Publish-to-commit latency"))!;
    const dots = [...latency.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)" r="3" fill="#e377c2" class="isolated"\/>/g)];
    assert.equal(dots.length, 1, "the p99 of second 4 is drawn");
    assert.match(latency, /<polyline points="[^"]+" fill="none" stroke="#e377c2"/, "seconds 0–1 are a line");
  });

  it("has one lane per worker, each death a cross with its cause, and the faults named over the charts", () => {
    const html = renderReport(smallRun().result);
    const lanes = html.split("<h2>").find((part) => part.startsWith("Worker processes, one lane each"))!;
    assert.ok(lanes, "the lanes chart is there");
    assert.deepEqual(
      [...lanes.matchAll(/class="lane-label">([^<]+)</g)].map((m) => m[1]),
      ["w1", "q1"],
    );
    assert.match(lanes, /<title>w1 paused 1\.0–2\.0 s<\/title>/);
    assert.match(lanes, /<title>w1 killed by the nemesis at 3\.0 s<\/title>/);
    assert.match(lanes, /<title>q1 crashed by itself at 4\.0 s<\/title>/);
    assert.match(html, /class="fault-label">pause w1</);
    assert.match(html, /class="fault-label">kill w1</);
  });

  it("leaves the lanes out for a result without worker events (an older result.json)", () => {
    const { result } = smallRun();
    delete result.timeline.workerLanes;
    assert.doesNotMatch(renderReport(result), /one lane each/);
  });

  it("writes the workers' events into history.jsonl beside the producer's", () => {
    const { result, history } = smallRun();
    const dir = mkdtempSync(join(tmpdir(), "orderq-report-"));
    writeReport(dir, result, history, WORKER_EVENTS);
    const lines = readFileSync(join(dir, "history.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string });
    assert.equal(lines.length, history.length + WORKER_EVENTS.length);
    assert.equal(lines.filter((l) => l.type === "worker").length, WORKER_EVENTS.length);
    const times = lines.map((l) => (l as unknown as { time: number }).time);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      "in time order",
    );
  });
});

describe("chaos report: an inbox run's effects", () => {
  /** o1 taken once; o2's movements applied twice, as the unsafe handler run twice leaves them. */
  const withEffects = () => {
    const { result } = smallRun();
    const items = [{ sku: "mug-330", qty: 2 }];
    result.inbox = {
      table: "orderq_inbox",
      handler: "unsafe-handler.mjs",
      committed: 2,
      deadLettered: 0,
      effects: checkEffects({
        inbox: ["o1", "o2"].map((orderId) => ({ orderId, outcome: "committed" as const })),
        orders: ["o1", "o2"].map((orderId) => ({ orderId, items })),
        movements: [
          { orderId: "o1", sku: "mug-330", taken: 2 },
          { orderId: "o2", sku: "mug-330", taken: 4 },
        ],
        stockBefore: [{ sku: "mug-330", onHand: 100 }],
        stockAfter: [{ sku: "mug-330", onHand: 94 }],
        accepted: ["o1", "o2"],
      }),
    };
    return result;
  };

  it("the terminal names the order whose movements drifted, with its figures, beside the SKU's", () => {
    const result = withEffects();
    // What the terminal's summary reads besides the small run's fields.
    Object.assign(result.faults, { byKind: {} });
    Object.assign(result.check, {
      accepted: 2,
      residue: { count: 0, ids: [] },
      brokerLostWrites: { count: 0, byStream: {}, samples: [], renumbered: 0 },
    });
    const text = renderResult(result);
    assert.match(text, /^order drift: o2 took mug-330 4 \(items 2\)$/m);
    assert.match(text, /^stock drift: mug-330: down 6, committed orders hold 4$/m);
  });

  it("report.html has the order's row in an order table, above the SKU table", () => {
    const html = renderReport(withEffects());
    const effects = html.split("<h2>").find((part) => part.startsWith("Effects <small>"))!;
    assert.match(effects, /<tr><td>o2<\/td><td>mug-330<\/td><td>2<\/td><td>4<\/td><\/tr>/);
    assert.ok(effects.indexOf("units its movements took") < effects.indexOf("stock went down by"), "the order table comes first");
  });
});
