/**
 * Model-based tests against a real nats-server and real `orderq work` processes (fast-check
 * `asyncModelRun`): random command lists publish orders of every kind and inject faults (SIGKILL,
 * SIGSTOP/SIGCONT, commit-then-die, kill -9 of the server, network cuts); then everything is healed,
 * the system is brought to quiescence, and the real ledger, DLQ and ORDERS are compared with what the
 * model predicts and run through the chaos checker. The same property on the broken build (`--unsafe`)
 * must fail and shrink to a few commands: a test of the test.
 *
 * The inbox variant runs the same commands plus restart-db (kill -9 of a private PostgreSQL, restart
 * on the same data dir) and publish-flaky (an order whose handler fails once after its writes) with
 * workers in inbox mode running examples/postgres-orders' handler: the inbox rows are then the ledger
 * of record, and the effect checker must find one `orders` row per committed order, its stock
 * movements exactly its items, and stock down exactly once. With the example's unsafe handler (its writes outside the inbox transaction) the
 * property must fail for duplicated effects and shrink.
 *
 * ORDERQ_MODEL_RUNS sets the number of runs (default 6), ORDERQ_MODEL_INBOX_RUNS those of the inbox
 * variant (default 3). A failure prints the line that replays it: ORDERQ_MODEL_SEED=…
 * ORDERQ_MODEL_PATH=… ORDERQ_MODEL_REPLAY=… npx mocha test/integration/model.test.ts -g … (the last is
 * fast-check's replayPath of the command list: without it the path cannot be walked).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { check, type CheckResult } from "../../src/core/chaos/checker.js";
import type { EffectsResult } from "../../src/core/chaos/effects.js";
import { errorMessage } from "../../src/core/base/errors.js";
import type { OpKind } from "../../src/core/pipeline/history.js";
import { makeInvalidPayload, makeOrder, orderJson } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { setTimeout as sleep } from "node:timers/promises";
import { FLAKY_SUFFIX, ModelSystem, writeModelHandler, type ModelSystemOptions, type Observation } from "../support/model-system.js";

const RUNS = Number(process.env.ORDERQ_MODEL_RUNS ?? 6);
const INBOX_RUNS = Number(process.env.ORDERQ_MODEL_INBOX_RUNS ?? 3);
const REPLAY =
  process.env.ORDERQ_MODEL_SEED === undefined ? undefined : { seed: Number(process.env.ORDERQ_MODEL_SEED), path: process.env.ORDERQ_MODEL_PATH };
/** Which commands of the replayed list ran (fast-check's `replayPath`, printed in the counterexample). */
const REPLAY_PATH = process.env.ORDERQ_MODEL_REPLAY;
const MAX_COMMANDS = 16;
const MAX_WORKERS = 3;
/** The broken build must fail within this many runs, and shrink to at most this many commands. */
const UNSAFE_RUNS = 25;
const SHORT_SCHEDULE = 6;
/**
 * The unsafe example handler must fail within this many runs, for duplicated effects, within the time
 * limit (runs cost 5-10 s each); if the shrinking ends before the limit, it must have shrunk to at most
 * SHORT_SCHEDULE commands.
 */
const UNSAFE_INBOX_RUNS = 10;
const UNSAFE_INBOX_TIME_LIMIT_MS = 60_000;
/** At most this many restart-db per run: each outage costs the orders in hand a delivery or so (see INBOX_MAX_DELIVER). */
const MAX_DB_RESTARTS = 3;
/** Inbox mode: connections per worker and most orders per transaction (several: savepoints are exercised). */
const INBOX_POOL = 2;
const INBOX_BATCH = 4;
/** How long the model's handler stays in the transaction after the example's writes. */
const HANDLER_AFTER_MS = 200;

// ---------------------------------------------------------------------------------------------
// The model: which orders exist and what must become of each; the rest only gates the commands.

type PublishKind = Extract<OpKind, "order" | "poison" | "invalid">;

interface Model {
  /** Every published id, with the server restarts that preceded its publish. */
  orders: Map<string, { kind: PublishKind; restarts: number }>;
  published: number;
  workers: { paused: boolean }[];
  networkCut: boolean;
  restarts: number;
  dbRestarts: number;
}

const initialModel = (): Model => ({ orders: new Map(), published: 0, workers: [], networkCut: false, restarts: 0, dbRestarts: 0 });

interface Tally {
  commits: number;
  deadLetterClaims: number;
  dlqEntries: number;
}

/** An order is committed once; a poison order is claimed and copied to the DLQ once; an invalid payload is only copied. */
const PREDICTED: Record<PublishKind, Tally> = {
  order: { commits: 1, deadLetterClaims: 0, dlqEntries: 0 },
  poison: { commits: 0, deadLetterClaims: 1, dlqEntries: 1 },
  invalid: { commits: 0, deadLetterClaims: 0, dlqEntries: 1 },
};

function payloadOf(id: string, kind: PublishKind, variant: number): string {
  const rng = seededRng(variant);
  return kind === "invalid" ? makeInvalidPayload(id, "web", rng) : orderJson(makeOrder(id, "web", rng, kind === "poison" ? "poison" : undefined));
}

// ---------------------------------------------------------------------------------------------
// Commands. Each checks its precondition on the model, acts on the real system, updates the model.

type Command = fc.AsyncCommand<Model, ModelSystem>;

/** The index of the `pick`th worker (modulo) among those that satisfy `which`, or -1. */
function pickWorker(m: Readonly<Model>, pick: number, which: (w: { paused: boolean }) => boolean): number {
  const indexes = m.workers.flatMap((w, i) => (which(w) ? [i] : []));
  return indexes.length ? indexes[pick % indexes.length] : -1;
}

/** `suffix`: FLAKY_SUFFIX marks an order whose handler fails once after its writes (inbox mode). */
async function publishNew(m: Model, sys: ModelSystem, kind: PublishKind, variant: number, suffix = ""): Promise<void> {
  const id = `m${++m.published}${suffix}`;
  const ack = await sys.publish(id, kind, payloadOf(id, kind, variant));
  assert.equal(ack.duplicate, false, `${id} is a new message id`);
  m.orders.set(id, { kind, restarts: m.restarts });
}

class Publish implements Command {
  constructor(
    readonly kind: PublishKind,
    readonly variant: number,
  ) {}
  check = () => true;
  async run(m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    await publishNew(m, sys, this.kind, this.variant);
  }
  toString = () => (this.kind === "order" ? "publish" : `publish-${this.kind}`);
}

/**
 * Inbox mode only: an order whose handler throws on its first attempt after the example's writes (a
 * transient error after the effect, as a payment call that times out). orderq rolls its savepoint
 * back and retries it: it must be committed once with its effects once, like any order.
 */
class PublishFlaky implements Command {
  constructor(readonly variant: number) {}
  check = () => true;
  async run(m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    await publishNew(m, sys, "order", this.variant, FLAKY_SUFFIX);
  }
  toString = () => "publish-flaky";
}

class PublishDuplicate implements Command {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.orders.size > 0;
  async run(m: Model, sys: ModelSystem) {
    const ids = [...m.orders.keys()];
    const id = ids[this.pick % ids.length];
    sys.step(`${this.toString()} ${id}`);
    const ack = await sys.republish(id);
    // The stream remembers message ids for its duplicate window, but a restart forgets those of
    // messages already acked and removed: the ledger (or the DLQ claim) must absorb such a copy.
    if (m.orders.get(id)?.restarts === m.restarts) assert.equal(ack.duplicate, true, `${id} again is a duplicate`);
  }
  toString = () => `publish-duplicate#${this.pick}`;
}

class StartWorker implements Command {
  // A worker started while its path is cut cannot connect and exits: not a healthy worker.
  check = (m: Readonly<Model>) => !m.networkCut && m.workers.length < MAX_WORKERS;
  async run(m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    sys.startWorker();
    m.workers.push({ paused: false });
  }
  toString = () => "start-worker";
}

class KillWorker implements Command {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.workers.length > 0;
  async run(m: Model, sys: ModelSystem) {
    const i = pickWorker(m, this.pick, () => true);
    sys.step(`${this.toString()} → worker #${i}`);
    await sys.killWorker(i);
    m.workers.splice(i, 1);
  }
  toString = () => `kill-worker#${this.pick}`;
}

class PauseWorker implements Command {
  constructor(
    readonly pick: number,
    readonly pause: boolean,
  ) {}
  check = (m: Readonly<Model>) => pickWorker(m, this.pick, (w) => w.paused !== this.pause) >= 0;
  async run(m: Model, sys: ModelSystem) {
    const i = pickWorker(m, this.pick, (w) => w.paused !== this.pause);
    sys.step(`${this.toString()} → worker #${i}`);
    sys.signalWorker(i, this.pause ? "SIGSTOP" : "SIGCONT");
    m.workers[i].paused = this.pause;
  }
  toString = () => `${this.pause ? "pause" : "resume"}-worker#${this.pick}`;
}

class CommitThenDie implements Command {
  check = (m: Readonly<Model>) => !m.networkCut;
  async run(m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    const died = await sys.commitThenDie(() => publishNew(m, sys, "order", 0));
    sys.note(died ? "  the crasher committed and died before its ack" : "  the crasher found no order: killed");
  }
  toString = () => "commit-then-die";
}

class RestartServer implements Command {
  constructor(readonly downMs: number) {}
  check = () => true;
  async run(m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    await sys.restartServer(this.downMs);
    m.restarts++;
  }
  toString = () => `restart-server(${this.downMs}ms)`;
}

/** Inbox mode only: kill -9 of PostgreSQL, down for `downMs`, restarted on the same data dir. */
class RestartDb implements Command {
  constructor(readonly downMs: number) {}
  check = (m: Readonly<Model>) => m.dbRestarts < MAX_DB_RESTARTS;
  async run(m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    await sys.restartDb(this.downMs);
    m.dbRestarts++;
  }
  toString = () => `restart-db(${this.downMs}ms)`;
}

class Network implements Command {
  constructor(readonly cut: boolean) {}
  check = (m: Readonly<Model>) => m.networkCut !== this.cut;
  async run(m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    if (this.cut) sys.cutNetwork();
    else sys.healNetwork();
    m.networkCut = this.cut;
  }
  toString = () => (this.cut ? "cut-network" : "heal-network");
}

class Wait implements Command {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: Model, sys: ModelSystem) {
    sys.step(this.toString());
    await sleep(this.ms);
  }
  toString = () => `wait(${this.ms}ms)`;
}

// Unbiased: fast-check otherwise starts with tiny lists, and each run here costs seconds.
const commands = (inbox: boolean) =>
  fc.noBias(
    fc.commands<Model, ModelSystem, false>(
      [
        fc.tuple(fc.constantFrom<PublishKind>("order", "order", "poison", "invalid"), fc.nat(7)).map(([kind, variant]) => new Publish(kind, variant)),
        fc.nat().map((pick) => new PublishDuplicate(pick)),
        fc.constant(new StartWorker()),
        fc.constant(new StartWorker()), // twice as likely: most faults need a worker to hit
        fc.nat().map((pick) => new KillWorker(pick)),
        fc.tuple(fc.nat(), fc.boolean()).map(([pick, pause]) => new PauseWorker(pick, pause)),
        fc.constant(new CommitThenDie()),
        fc.integer({ min: 0, max: 500 }).map((ms) => new RestartServer(ms)),
        fc.boolean().map((cut) => new Network(cut)),
        fc.integer({ min: 50, max: 1_500 }).map((ms) => new Wait(ms)),
        ...(inbox ? [fc.integer({ min: 0, max: 500 }).map((ms) => new RestartDb(ms)), fc.nat(7).map((variant) => new PublishFlaky(variant))] : []),
      ],
      { maxCommands: MAX_COMMANDS, size: "max", ...(REPLAY_PATH && { replayPath: REPLAY_PATH }) },
    ),
  );

// ---------------------------------------------------------------------------------------------
// One run: commands, quiescence, then the real state against the model and the checker.

const dlqId = (e: Observation["dlq"][number]) => e.originalHeaders["Nats-Msg-Id"]?.[0] ?? e.orderId ?? "(no id)";

function tallies(seen: Observation): Record<string, Tally> {
  const out: Record<string, Tally> = {};
  const of = (id: string) => (out[id] ??= { commits: 0, deadLetterClaims: 0, dlqEntries: 0 });
  for (const w of seen.ledger) of(w.orderId)[w.outcome.result === "committed" ? "commits" : "deadLetterClaims"]++;
  for (const e of seen.dlq) of(dlqId(e)).dlqEntries++;
  return out;
}

function badEffects(r: EffectsResult): string {
  const bad = (["lostEffects", "duplicatedEffects", "unexpectedEffects"] as const).filter((c) => r.categories[c].count > 0);
  const orders = r.movements.map((d) => `${d.orderId} took ${d.actual} ${d.sku}, expected ${d.expected}`);
  const drift = r.stock.map((d) => `${d.sku} down ${d.actual}, expected ${d.expected}`);
  return [...bad.map((c) => `${c}: ${r.categories[c].ids.join(", ")}`), ...orders, ...drift].join("; ");
}

function badFindings(r: CheckResult): string {
  const bad = (["lost", "duplicated", "unexpected", "stuck"] as const).filter((c) => r.categories[c].count > 0);
  const failed = r.expectations.filter((e) => !e.ok).map((e) => `${e.name}: ${e.detail}`);
  return [...bad.map((c) => `${c}: ${r.categories[c].ids.join(", ")}`), ...failed].join("; ");
}

/** Which system a run drives: the KV ledger (safe or `--unsafe` build), or the inbox with a handler. */
type Variant = "kv" | "kv-unsafe" | "inbox" | "inbox-unsafe";

interface RunFigures {
  variant: Variant;
  commands: number;
  ms: number;
  residue: number;
  /** The first line of what failed, if the run did. */
  failure?: string;
}
const figures: RunFigures[] = [];

async function runOnce(cmds: Iterable<Command>, variant: Variant, options: ModelSystemOptions): Promise<void> {
  const started = Date.now();
  const sys = await ModelSystem.start(options);
  const model = initialModel();
  let commandCount = 0;
  let residue = 0;
  let failure: string | undefined;
  try {
    await fc.asyncModelRun(() => ({ model, real: sys }), cmds);
    commandCount = sys.commands;
    sys.note("settle: heal, a healthy worker, quiet");
    const seen = await sys.settle();
    residue = seen.remaining.length;

    const result = check({
      history: sys.history.events,
      ledger: seen.ledger,
      dlq: seen.dlq.map((e) => ({ msgId: dlqId(e), orderId: e.orderId })),
      remaining: seen.remaining,
      expect: { dlq: "only-marked", minFaults: 0, minRedeliveries: 0, faultsMustHaveEffect: false },
      observed: { faults: 0, redeliveries: 0, effects: 0, quiet: true },
    });
    assert.ok(result.valid, `the chaos checker finds the run invalid: ${badFindings(result)}`);

    const predicted = Object.fromEntries([...model.orders].map(([id, { kind }]) => [id, PREDICTED[kind]]));
    assert.deepEqual(tallies(seen), predicted, "ledger and DLQ as the model predicts");
    const kinds = [...model.orders.values()].map((o) => o.kind);
    assert.equal(result.categories.ok.count, kinds.filter((k) => k === "order").length, "committed orders");
    assert.equal(result.categories.deadLetteredExpected.count, kinds.length - result.categories.ok.count, "dead-lettered orders");

    if (options.inbox) {
      // The inbox was the ledger of record above; now what the handler wrote must match it.
      const effects = seen.effects;
      assert.ok(effects, "inbox mode reads the effects");
      assert.ok(effects.valid, `the effect checker finds the effects invalid: ${badEffects(effects)}`);
      assert.equal(effects.committed, result.categories.ok.count, "committed orders in the inbox");
      assert.equal(effects.categories.ok.count, effects.committed, "one orders row per committed order");
    }
  } catch (err) {
    failure = errorMessage(err).split("\n")[0];
    const logs = sys.workerLogs();
    throw new Error(
      `${errorMessage(err)}\n  steps:\n    ${sys.steps.join("\n    ")}${logs.length ? `\n  worker stderr:\n    ${logs.join("\n    ")}` : ""}`,
      { cause: err },
    );
  } finally {
    await sys.dispose();
    figures.push({ variant, commands: commandCount, ms: Date.now() - started, residue, failure });
  }
}

const property = (variant: Variant, options: ModelSystemOptions) =>
  fc.asyncProperty(commands(options.inbox !== undefined), (cmds) => runOnce(cmds, variant, options));

/** Runs a property that must hold; a failure prints the line that replays it (`grep`: its test's title). */
async function mustHold(prop: ReturnType<typeof property>, runs: number, grep: string): Promise<void> {
  const details = await fc.check(prop, { numRuns: runs, ...REPLAY });
  if (details.failed) {
    const replayPath = /replayPath="([^"]*)"/.exec(fc.stringify(details.counterexample))?.[1];
    const replay = `ORDERQ_MODEL_SEED=${details.seed} ORDERQ_MODEL_PATH=${details.counterexamplePath} ORDERQ_MODEL_REPLAY='${replayPath ?? ""}' npx mocha test/integration/model.test.ts -g '${grep}'`;
    console.log(`    replay with: ${replay}`);
    throw new Error(`${fc.defaultReportMessage(details)}\n${errorMessage(details.errorInstance)}\nreplay with: ${replay}`);
  }
}

/** The commands that ran in a counterexample (its toString lists them, then a replay comment). */
function executed(cmds: Iterable<Command> & { toString(): string }): string[] {
  return cmds
    .toString()
    .replace(/\s*\/\*.*\*\/$/s, "")
    .split(",")
    .filter(Boolean);
}

function summary(runs: RunFigures[]): string {
  if (runs.length === 0) return "no runs";
  const total = runs.reduce((s, r) => s + r.ms, 0);
  const cmds = runs.map((r) => r.commands);
  return (
    `${runs.length} runs; commands per run mean ${(cmds.reduce((a, b) => a + b, 0) / runs.length).toFixed(1)}, max ${Math.max(...cmds)}; ` +
    `time per run mean ${(total / runs.length / 1000).toFixed(1)} s, max ${(Math.max(...runs.map((r) => r.ms)) / 1000).toFixed(1)} s; ` +
    `total ${(total / 1000).toFixed(0)} s; runs with residue in ORDERS ${runs.filter((r) => r.residue > 0).length}; ` +
    `failed runs ${runs.filter((r) => r.failure !== undefined).length}` +
    [...new Set(runs.flatMap((r) => (r.failure === undefined ? [] : [r.failure])))].map((f) => `\n      failed: ${f}`).join("")
  );
}

describe("model-based: random commands and faults against real nats-server and workers", function () {
  this.timeout(0); // bounded by the run count and each run's own settle timeout

  after(() => {
    console.log(`    model runs (safe build): ${summary(figures.filter((f) => f.variant === "kv"))}`);
    console.log(`    model runs (--unsafe build): ${summary(figures.filter((f) => f.variant === "kv-unsafe"))}`);
  });

  it("every run ends as the model predicts (each order committed or dead-lettered once) and the checker finds it valid", async () => {
    await mustHold(property("kv", {}), RUNS, "model-based: random");
  });

  it("fails on the broken build (--unsafe) and shrinks to a schedule of a few commands", async function () {
    if (REPLAY) this.skip(); // a replay is of the property above
    const details = await fc.check(property("kv-unsafe", { unsafe: true }), { numRuns: UNSAFE_RUNS });
    assert.ok(details.failed, `the --unsafe build passed ${details.numRuns} runs: the model-based property cannot catch a duplicate commit`);
    const [cmds] = details.counterexample ?? [[]];
    const shrunk = executed(cmds);
    console.log(
      `    --unsafe counterexample after ${details.numShrinks} shrinks (seed ${details.seed}, path ${details.counterexamplePath}): ${shrunk.join(", ")}`,
    );
    assert.match(errorMessage(details.errorInstance), /duplicated/, "fails for a duplicate, not for something else");
    assert.ok(shrunk.length <= SHORT_SCHEDULE, `shrunk to ${shrunk.length} commands: ${shrunk.join(", ")}`);
  });
});

describe("model-based, inbox mode: the same commands plus restart-db and publish-flaky, the example handler in PostgreSQL", function () {
  this.timeout(0); // bounded by the run counts, each run's settle timeout and the negative control's time limit
  let dir: string;
  let handler: string;
  let unsafeHandler: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "orderq-model-inbox-"));
    handler = writeModelHandler(dir, "handler.mjs", HANDLER_AFTER_MS);
    unsafeHandler = writeModelHandler(dir, "unsafe-handler.mjs", HANDLER_AFTER_MS);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
    console.log(`    model runs (inbox, example handler): ${summary(figures.filter((f) => f.variant === "inbox"))}`);
    console.log(`    model runs (inbox, unsafe example handler): ${summary(figures.filter((f) => f.variant === "inbox-unsafe"))}`);
  });

  const inbox = (module: string): ModelSystemOptions => ({ inbox: { handler: module, poolSize: INBOX_POOL, maxBatch: INBOX_BATCH } });

  it("every run ends as the model predicts with the inbox as the ledger of record, and the effects happened exactly once", async () => {
    await mustHold(property("inbox", inbox(handler)), INBOX_RUNS, "model-based, inbox mode");
  });

  it("fails with the unsafe example handler (writes outside the inbox transaction): duplicated effects, and shrinks", async function () {
    if (REPLAY) this.skip(); // a replay is of the property above
    // After the time limit every run left (a shrink candidate, mostly) is skipped: none is cut off
    // midway, and a limit reached before any failure leaves no counterexample, which fails below.
    const started = Date.now();
    const details = await fc.check(property("inbox-unsafe", inbox(unsafeHandler)), {
      numRuns: UNSAFE_INBOX_RUNS,
      skipAllAfterTimeLimit: UNSAFE_INBOX_TIME_LIMIT_MS,
    });
    const runs = figures.filter((f) => f.variant === "inbox-unsafe").length;
    assert.ok(
      details.failed && details.counterexample,
      `the unsafe handler passed ${details.numRuns} runs (${details.numSkips} skipped at the time limit): the inbox variant cannot catch duplicated effects`,
    );
    const [cmds] = details.counterexample;
    const shrunk = executed(cmds);
    const why = errorMessage(details.errorInstance).split("\n")[0];
    console.log(
      `    unsafe handler: failed on run ${details.numRuns} of ${UNSAFE_INBOX_RUNS}; counterexample after ${details.numShrinks} shrinks, ${runs} runs in all, ` +
        `${details.numSkips} skipped at the time limit (seed ${details.seed}, path ${details.counterexamplePath}): ${shrunk.join(", ")}\n      ${why}`,
    );
    assert.match(why, /duplicatedEffects/, "fails for duplicated effects, not for something else");
    // fast-check counts runs skipped at the time limit only before the first failure (numSkips), not
    // while shrinking: a shrink cut short by the limit is told by the clock. Each shrink candidate
    // costs a run of 5-10 s, and most candidates (those without the failing command) pass.
    const cutShort = details.numSkips > 0 || Date.now() - started >= UNSAFE_INBOX_TIME_LIMIT_MS;
    if (!cutShort) {
      assert.ok(details.numShrinks > 0, `did not shrink: ${shrunk.join(", ")}`);
      assert.ok(shrunk.length <= SHORT_SCHEDULE, `shrunk to ${shrunk.length} commands: ${shrunk.join(", ")}`);
    }
  });
});
