/** Pure properties of the codecs, the chaos checker and scenario validation, many runs each (ORDERQ_PROPERTY_RUNS). */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MsgHdrsImpl } from "@nats-io/transport-node";
import type { AttemptRecord } from "../../src/core/pipeline/attempts.js";
import {
  CATEGORIES,
  check,
  SAMPLE_SIZE,
  type Category,
  type CheckExpectations,
  type CheckInput,
  type CheckResult,
  type MessageRef,
} from "../../src/core/chaos/checker.js";
import { parseScenario } from "../../src/core/chaos/loader.js";
import { DLQ_EXPECTATIONS, FAULT_KINDS, NETWORK_PATHS, type FaultKind, type Scenario } from "../../src/core/chaos/scenario.js";
import { stringify as stringifyYaml } from "yaml";
import { decodeDlqEntry, DLQ_REASONS, encodeDlqHeaders, oneLine, type DlqEntry } from "../../src/core/pipeline/dlq-entry.js";
import { InputError } from "../../src/core/base/errors.js";
import type { HistoryEvent, OpKind } from "../../src/core/pipeline/history.js";
import type { LedgerWrite } from "../../src/core/pipeline/ledger.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";
import { seededRng } from "../../src/core/base/random.js";

const RUNS = Number(process.env.ORDERQ_PROPERTY_RUNS ?? 300);

const token = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/);
const time = fc.date({ min: new Date("2020-01-01"), max: new Date("2040-01-01"), noInvalidDate: true }).map((d) => d.toISOString());
const text = fc.string({ unit: "binary", maxLength: 200 });

const attempt: fc.Arbitrary<AttemptRecord> = fc.record(
  {
    orderId: token,
    streamSeq: fc.nat(),
    attempt: fc.integer({ min: 1, max: 100 }),
    worker: token,
    error: text,
    errorClass: token,
    at: time,
  },
  { requiredKeys: ["streamSeq", "attempt", "worker", "error", "errorClass", "at"] },
);

const entry: fc.Arbitrary<DlqEntry> = fc.record(
  {
    reason: fc.constantFrom(...DLQ_REASONS),
    lastError: text,
    orderId: text,
    source: token,
    originalStream: token,
    originalSubject: token,
    originalSeq: fc.nat(),
    originalHeaders: fc.dictionary(token, fc.array(text, { minLength: 1, maxLength: 3 })),
    consumer: token,
    deliveries: fc.integer({ min: 1, max: 1000 }),
    crashes: fc.integer({ min: 0, max: 1000 }),
    attempts: fc.array(attempt, { maxLength: 8 }),
    firstAttemptAt: time,
    lastAttemptAt: time,
    deadLetteredAt: time,
  },
  {
    requiredKeys: [
      "reason",
      "lastError",
      "source",
      "originalStream",
      "originalSubject",
      "originalSeq",
      "originalHeaders",
      "consumer",
      "deliveries",
      "attempts",
      "deadLetteredAt",
    ],
  },
);

/** Through the bytes a NATS message carries, not just the in-memory header map. */
function overTheWire(e: DlqEntry, msgId?: string) {
  const wire = MsgHdrsImpl.decode((encodeDlqHeaders(e, msgId) as MsgHdrsImpl).encode());
  return decodeDlqEntry(wire, new Uint8Array(), 7);
}

describe("DLQ entry codec (properties)", () => {
  it("round-trips every field over the wire (free text as one trimmed line)", () => {
    fc.assert(
      fc.property(entry, (e) => {
        const { dlqSeq, payload, ...decoded } = overTheWire(e);
        const expected: Record<string, unknown> = { ...e, lastError: oneLine(e.lastError) };
        if (e.orderId !== undefined) expected.orderId = oneLine(e.orderId);
        for (const k of ["orderId", "firstAttemptAt", "lastAttemptAt"] as const) if (e[k] === undefined) delete expected[k];
        const actual = Object.fromEntries(Object.entries(decoded).filter(([, v]) => v !== undefined));
        // (JSON: fast-check builds null-prototype objects, the decoder ordinary ones)
        assert.deepEqual(actual, JSON.parse(JSON.stringify(expected)));
        assert.equal(dlqSeq, 7);
        assert.equal(payload.length, 0);
      }),
      { numRuns: RUNS },
    );
  });

  it("always puts the de-duplication id first", () => {
    fc.assert(
      fc.property(entry, token, (e, id) => {
        const bytes = new TextDecoder().decode((encodeDlqHeaders(e, id) as MsgHdrsImpl).encode());
        return bytes.split("\r\n")[1] === `Nats-Msg-Id: ${id}`;
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The chaos checker: a generator models a correct run; one injected fault must always be caught.

/** What a correct run does with one published id, and the category the checker must give it. */
interface IdPlan {
  kind: OpKind;
  publish: "ok" | "indeterminate" | "fail";
  /** Published a second time with the same id (absorbed by the stream: duplicate PubAck). */
  resend: boolean;
  /** For an indeterminate publish: whether it was stored and processed after all. */
  stored: boolean;
  /** Where the checker's expectations allow it: an ordinary order dead-lettered, a marked one committed. */
  unusualOutcome: boolean;
  /** Processed, yet its message came back in ORDERS (nats-server 2.9 file store after kill -9). */
  residue: boolean;
  attempt: number;
  /** An invalid payload's DLQ entry names the id it guessed from the payload. */
  dlqNamesId: boolean;
}

const plan = (publish: fc.Arbitrary<IdPlan["publish"]>): fc.Arbitrary<IdPlan> =>
  fc.record({
    kind: fc.constantFrom<OpKind>("order", "order", "order", "poison", "fatal", "crash", "invalid"),
    publish,
    resend: fc.boolean(),
    stored: fc.boolean(),
    unusualOutcome: fc.boolean(),
    residue: fc.boolean(),
    attempt: fc.integer({ min: 1, max: 10 }),
    dlqNamesId: fc.boolean(),
  });

interface Generated {
  input: CheckInput;
  /** The category of each id in a correct run. */
  expected: Map<string, Category>;
  /** Ids published with a PubAck, and ids whose every publish surely failed. */
  accepted: string[];
  failed: string[];
  /** Ids with a ledger commit or a DLQ entry. */
  processed: string[];
}

/** Deterministic in-place shuffle: the checker must not depend on the order it reads things in. */
function shuffle<T>(items: T[], seed: number): T[] {
  const rng = seededRng(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function buildRun(plans: IdPlan[], dlqExpectation: CheckExpectations["dlq"], shuffleSeed: number, minFaults: number, extraFaults: number): Generated {
  const history: HistoryEvent[] = [];
  const ledger: LedgerWrite[] = [];
  const dlq: MessageRef[] = [];
  const remaining: MessageRef[] = [];
  const out: Generated = { input: undefined as unknown as CheckInput, expected: new Map(), accepted: [], failed: [], processed: [] };
  let t = 1_000;
  let seq = 0;
  plans.forEach((p, i) => {
    const id = `o${i}`;
    history.push({ type: "invoke", id, kind: p.kind, source: "web", resend: false, time: t++ });
    if (p.publish === "ok") history.push({ type: "ok", id, seq: ++seq, duplicate: false, tries: 1, time: t++ });
    else history.push({ type: p.publish, id, error: "timeout", tries: 3, time: t++ });
    if (p.resend && p.publish === "ok") {
      history.push({ type: "invoke", id, kind: p.kind, source: "web", resend: true, time: t++ });
      history.push({ type: "ok", id, seq, duplicate: true, tries: 1, time: t++ });
    }
    if (p.publish === "ok") out.accepted.push(id);
    if (p.publish === "fail") out.failed.push(id);
    const processed = p.publish === "ok" || (p.publish === "indeterminate" && p.stored);
    if (!processed) {
      out.expected.set(id, p.publish === "fail" ? "notStored" : "unresolved");
      return;
    }
    out.processed.push(id);
    const write = (result: Outcome["result"]) =>
      ledger.push({
        orderId: id,
        seq: ++seq,
        outcome: { result, worker: "w1", attempt: p.attempt, streamSeq: i + 1, at: new Date(t++).toISOString() },
      });
    const marked = p.kind !== "order";
    const commit =
      p.kind !== "invalid" && (marked ? dlqExpectation === "any" && p.unusualOutcome : !(dlqExpectation !== "only-marked" && p.unusualOutcome));
    if (commit) write("committed");
    else {
      if (p.kind !== "invalid") write("dead-lettered"); // the claim; an invalid payload has no order id to claim
      dlq.push({ msgId: id, orderId: p.kind === "invalid" && !p.dlqNamesId ? undefined : id });
    }
    if (p.residue) remaining.push({ msgId: id, orderId: p.kind === "invalid" ? undefined : id });
    const deadLettered: Category = p.kind === "order" ? "deadLetteredUnexpected" : "deadLetteredExpected";
    out.expected.set(id, p.publish !== "ok" ? "recovered" : commit ? "ok" : deadLettered);
  });
  out.input = {
    history,
    ledger: shuffle(ledger, shuffleSeed),
    dlq: shuffle(dlq, shuffleSeed + 1),
    remaining: shuffle(remaining, shuffleSeed + 2),
    expect: { dlq: dlqExpectation, minFaults, minRedeliveries: 0, faultsMustHaveEffect: true },
    observed: { faults: minFaults + extraFaults, redeliveries: 0, effects: 1, quiet: true },
  };
  return out;
}

/** A correct run with at least one accepted order (so there is something to lose). */
const correctRun: fc.Arbitrary<Generated> = fc
  .record({
    first: plan(fc.constant("ok")),
    rest: fc.array(plan(fc.constantFrom("ok", "ok", "ok", "indeterminate", "fail")), { maxLength: 40 }),
    dlq: fc.constantFrom<CheckExpectations["dlq"]>(...DLQ_EXPECTATIONS),
    shuffleSeed: fc.integer(),
    minFaults: fc.nat(5),
    extraFaults: fc.nat(5),
  })
  .map((r) => buildRun([r.first, ...r.rest], r.dlq, r.shuffleSeed, r.minFaults, r.extraFaults));

const BAD = ["lost", "duplicated", "unexpected", "stuck"] as const;
const sortIds = (ids: string[]) => [...ids].sort((a, b) => a.localeCompare(b));

/** Asserts that the result holds exactly one bad id, `id`, in `category`, and declares the run invalid. */
function assertOnlyFinding(r: CheckResult, category: (typeof BAD)[number], id: string): void {
  assert.equal(r.valid, false);
  assert.deepEqual(r.categories[category], { count: 1, ids: [id] });
  for (const other of BAD.filter((c) => c !== category)) assert.equal(r.categories[other].count, 0, other);
}

describe("chaos checker (properties)", () => {
  it("finds every correct run valid and classifies each id as the run's model says", () => {
    fc.assert(
      fc.property(correctRun, ({ input, expected }) => {
        const r = check(input);
        assert.equal(r.valid, true, JSON.stringify(r.expectations.filter((e) => !e.ok)));
        for (const category of CATEGORIES) {
          const ids = sortIds([...expected].filter(([, c]) => c === category).map(([id]) => id));
          assert.deepEqual(r.categories[category], { count: ids.length, ids: ids.slice(0, SAMPLE_SIZE) }, category);
        }
        assert.equal(r.residue.count, input.remaining.length);
      }),
      { numRuns: RUNS },
    );
  });

  it("catches one lost order: an accepted order's every outcome removed", () => {
    fc.assert(
      fc.property(correctRun, fc.nat(), ({ input, accepted }, pick) => {
        const id = accepted[pick % accepted.length];
        input.ledger = input.ledger.filter((w) => w.orderId !== id);
        input.dlq = input.dlq.filter((ref) => ref.msgId !== id);
        input.remaining = input.remaining.filter((ref) => ref.msgId !== id);
        assertOnlyFinding(check(input), "lost", id);
      }),
      { numRuns: RUNS },
    );
  });

  it("catches one duplicated order: a processed order committed or dead-lettered once more", () => {
    fc.assert(
      fc.property(correctRun, fc.nat(), fc.constantFrom("commit", "dead-letter"), ({ input, processed }, pick, again) => {
        const id = processed[pick % processed.length];
        if (again === "commit") {
          input.ledger.push({
            orderId: id,
            seq: 10_000,
            outcome: { result: "committed", worker: "w2", attempt: 2, streamSeq: 1, at: new Date(0).toISOString() },
          });
        } else input.dlq.push({ msgId: id, orderId: id });
        assertOnlyFinding(check(input), "duplicated", id);
      }),
      { numRuns: RUNS },
    );
  });

  it("catches one unexpected order: processed though never published, or though its every publish failed", () => {
    fc.assert(
      fc.property(correctRun, fc.nat(), fc.constantFrom("ghost-commit", "ghost-dlq", "failed-publish"), ({ input, failed }, pick, how) => {
        const id = how === "failed-publish" && failed.length > 0 ? failed[pick % failed.length] : "ghost";
        if (how === "ghost-dlq") input.dlq.push({ msgId: id });
        else
          input.ledger.push({
            orderId: id,
            seq: 10_000,
            outcome: { result: "committed", worker: "w2", attempt: 1, streamSeq: 1, at: new Date(0).toISOString() },
          });
        assertOnlyFinding(check(input), "unexpected", id);
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Scenario validation: arbitrary input is refused with one InputError line; valid scenarios round-trip.

const FILE = "s.yaml";

/** Loads `text`; the only failure allowed is an InputError of one line naming the file and a line. */
function loadsOrRefuses(text: string): void {
  try {
    parseScenario(text, FILE);
  } catch (err) {
    assert.ok(err instanceof InputError, `not an InputError: ${err instanceof Error ? err.stack : String(err)}`);
    assert.match(err.message, /^s\.yaml:\d+: /);
    assert.doesNotMatch(err.message, /[\r\n]/, "one line");
  }
}

/** A duration in ms, written in any unit that the loader reads back exactly. */
const duration = fc.record({ ms: fc.integer({ min: 0, max: 3_600_000 }), unit: fc.constantFrom("ms", "s", "m") });
type DurationArb = { ms: number; unit: string };
const durationText = ({ ms, unit }: DurationArb) => (unit === "ms" ? `${ms}ms` : unit === "s" ? `${ms / 1000}s` : `${ms / 60_000}m`);
const probabilityArb = fc.double({ min: 0, max: 1, noNaN: true });
const share = fc.double({ min: 0, max: 0.25, noNaN: true });
const positiveInt = fc.integer({ min: 1, max: 1_000_000 });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** db-restart needs an inbox and kill-gateway an intake, which these scenarios do not have (test/unit/chaos-inbox-scenario.test.ts and chaos-intake.test.ts cover them). */
const KINDS = FAULT_KINDS.filter((k) => k !== "db-restart" && k !== "kill-gateway");

const faultArb = fc
  .record({
    kind: fc.constantFrom<FaultKind | "any">(...KINDS, "any"),
    of: fc.uniqueArray(fc.constantFrom(...KINDS), { minLength: 1 }),
    at: opt(duration),
    every: opt(duration),
    jitter: duration,
    count: opt(positiveInt),
    duration,
    target: opt(fc.oneof(fc.constantFrom(...NETWORK_PATHS), fc.stringMatching(/^[a-z0-9-]{1,12}$/))),
    delay: duration,
  })
  .map((f) => {
    const network = f.kind === "cut-network" || f.kind === "slow-network";
    const target = network && f.target !== undefined && !(NETWORK_PATHS as readonly string[]).includes(f.target) ? "workers" : f.target;
    return { ...f, at: f.at === undefined && f.every === undefined ? f.jitter : f.at, target };
  });

/** A valid scenario with every field given, as the loader must return it, and its YAML form. */
const validScenario = fc
  .record({
    name: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
    description: fc.string({ unit: "grapheme", maxLength: 60 }),
    orders: positiveInt,
    rate: fc.double({ min: 0, max: 1e6, noNaN: true }),
    sources: fc.record(
      {
        web: fc.double({ min: 0, max: 10, noNaN: true }),
        mobile: fc.double({ min: 0, max: 10, noNaN: true }),
        api: fc.double({ min: 0, max: 10, noNaN: true }),
      },
      { requiredKeys: [] },
    ),
    servers: fc.constantFrom<1 | 3>(1, 3),
    processes: fc.integer({ min: 1, max: 16 }),
    concurrency: positiveInt,
    restartDelay: duration,
    autoscale: opt(
      fc.record({
        min: fc.integer({ min: 1, max: 16 }),
        span: fc.nat(15),
        lag: fc.double({ min: 0.001, max: 1000, noNaN: true }),
        cooldown: duration,
        sample: duration,
      }),
    ),
    crashAfterCommit: probabilityArb,
    dropAck: probabilityArb,
    ackWait: duration,
    maxDeliver: positiveInt,
    backoffBase: duration,
    backoffMax: duration,
    handlerMs: fc.nat(100_000),
    rates: fc.tuple(probabilityArb, share, share, share, share),
    duplicateRate: probabilityArb,
    inFlight: positiveInt,
    publishTimeout: duration,
    retryFor: duration,
    faults: fc.array(faultArb, { maxLength: 4 }),
    timeLimit: duration,
    dlq: fc.constantFrom(...DLQ_EXPECTATIONS),
    minFaults: fc.nat(100),
    minRedeliveries: fc.nat(100),
  })
  .map((g) => {
    const autoscale = g.autoscale && { ...g.autoscale, max: Math.min(16, g.autoscale.min + g.autoscale.span) };
    const [failRate, poisonRate, fatalRate, crashRate, invalidRate] = g.rates;
    const sources = { ...g.sources };
    const yamlForm = {
      name: g.name,
      description: g.description,
      orders: g.orders,
      rate: g.rate,
      sources,
      servers: g.servers,
      workers: {
        processes: g.processes,
        concurrency: g.concurrency,
        "restart-delay": durationText(g.restartDelay),
        ...(autoscale && {
          autoscale: {
            min: autoscale.min,
            max: autoscale.max,
            "target-lag-seconds": autoscale.lag,
            cooldown: durationText(autoscale.cooldown),
            "sample-every": durationText(autoscale.sample),
          },
        }),
        "crash-after-commit-rate": g.crashAfterCommit,
        "drop-ack-rate": g.dropAck,
      },
      consumer: {
        "ack-wait": durationText(g.ackWait),
        "max-deliver": g.maxDeliver,
        backoff: { base: durationText(g.backoffBase), max: durationText(g.backoffMax) },
      },
      handler: {
        ms: g.handlerMs,
        "fail-rate": failRate,
        "poison-rate": poisonRate,
        "fatal-rate": fatalRate,
        "crash-rate": crashRate,
        "invalid-rate": invalidRate,
      },
      producer: {
        "duplicate-rate": g.duplicateRate,
        "in-flight": g.inFlight,
        "publish-timeout": durationText(g.publishTimeout),
        "retry-for": durationText(g.retryFor),
      },
      faults: g.faults.map((f) => ({
        kind: f.kind,
        ...(f.kind === "any" && { of: f.of }),
        ...(f.at && { at: durationText(f.at) }),
        ...(f.every && { every: durationText(f.every) }),
        jitter: durationText(f.jitter),
        ...(f.count !== undefined && { count: f.count }),
        duration: durationText(f.duration),
        ...(f.target !== undefined && { target: f.target }),
        delay: durationText(f.delay),
      })),
      "time-limit": durationText(g.timeLimit),
      expect: { dlq: g.dlq, "min-faults": g.minFaults, "min-redeliveries": g.minRedeliveries },
    };
    const scenario: Scenario = {
      name: g.name,
      description: g.description,
      file: FILE,
      orders: g.orders,
      rate: g.rate,
      sources,
      servers: g.servers,
      workers: {
        processes: g.processes,
        concurrency: g.concurrency,
        restartDelayMs: g.restartDelay.ms,
        crashAfterCommitRate: g.crashAfterCommit,
        dropAckRate: g.dropAck,
        autoscale: autoscale && {
          min: autoscale.min,
          max: autoscale.max,
          targetLagSeconds: autoscale.lag,
          cooldownMs: autoscale.cooldown.ms,
          sampleMs: autoscale.sample.ms,
        },
      },
      consumer: { ackWaitMs: g.ackWait.ms, maxDeliver: g.maxDeliver, backoffBaseMs: g.backoffBase.ms, backoffMaxMs: g.backoffMax.ms },
      handler: { ms: g.handlerMs, failRate, poisonRate, fatalRate, crashRate, invalidRate },
      producer: { duplicateRate: g.duplicateRate, inFlight: g.inFlight, publishTimeoutMs: g.publishTimeout.ms, retryForMs: g.retryFor.ms },
      faults: g.faults.map((f) => ({
        kind: f.kind,
        of: f.kind === "any" ? f.of : [],
        atMs: f.at?.ms,
        everyMs: f.every?.ms,
        jitterMs: f.jitter.ms,
        count: f.count,
        durationMs: f.duration.ms,
        target: f.target,
        delayMs: f.delay.ms,
      })),
      timeLimitMs: g.timeLimit.ms,
      expect: { dlq: g.dlq, minFaults: g.minFaults, minRedeliveries: g.minRedeliveries },
    };
    return { yamlForm, scenario };
  });

type Json = unknown;
/** Every path to a value in a plain JSON tree, the root excluded. */
function paths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...paths(v, [...prefix, i])]);
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
  return [];
}

/** A copy of `tree` with the value at `path` replaced (or a new key added where the path ends in a fresh key). */
function setIn(tree: Json, path: (string | number)[], value: Json): Json {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy = (Array.isArray(tree) ? [...tree] : { ...(tree as object) }) as Record<string | number, Json>;
  copy[head] = setIn(copy[head], rest, value);
  return copy;
}

/** Fragments of YAML syntax, valid and not (anchors, aliases, tags, directives, flow and block styles), and raw bytes. */
const yamlSoup = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(
          "orders: 1",
          "rate: 5",
          "workers:",
          "  processes: 2",
          "faults:",
          "  - kind: kill-worker",
          "    at: 1s",
          "&a",
          "*a",
          "<<: *a",
          "!!binary",
          "!!str",
          "!custom",
          "%YAML 1.2",
          "---",
          "...",
          "? ",
          ": ",
          "- ",
          "{",
          "}",
          "[",
          "]",
          "'",
          '"',
          "|",
          ">",
          "#",
          "\t",
          "  ",
          "null",
          "~",
          "1e999",
          "0x1F",
          ".nan",
        ),
        fc.string({ unit: "binary", maxLength: 8 }),
      ),
      fc.constantFrom(" ", "\n", "\r\n", ""),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.map(([fragment, separator]) => fragment + separator).join(""));

/** JSON values whose strings may hold any character, line breaks included. */
const anyJson = fc.jsonValue({ stringUnit: "binary" });

describe("scenario validation (properties)", () => {
  it("round-trips every valid scenario: stringify with yaml, load, the same scenario", () => {
    fc.assert(
      fc.property(validScenario, ({ yamlForm, scenario }) => {
        assert.deepEqual(parseScenario(stringifyYaml(yamlForm), FILE), scenario);
      }),
      { numRuns: RUNS },
    );
  });

  it("refuses arbitrary text with one InputError line, and nothing else", () => {
    fc.assert(fc.property(fc.oneof(fc.string({ unit: "binary" }), yamlSoup), loadsOrRefuses), { numRuns: RUNS });
  });

  it("refuses arbitrary JSON values with one InputError line, and nothing else", () => {
    fc.assert(
      fc.property(anyJson, (value) => loadsOrRefuses(stringifyYaml(value))),
      { numRuns: RUNS },
    );
  });

  it("refuses a valid scenario with any one field replaced by an arbitrary value (or an unknown field added)", () => {
    fc.assert(
      fc.property(validScenario, fc.nat(), fc.boolean(), fc.string({ unit: "binary" }), anyJson, ({ yamlForm }, pick, addKey, key, value) => {
        const all = paths(yamlForm);
        const path = all[pick % all.length];
        const target = addKey ? [...path.slice(0, -1), key] : path;
        loadsOrRefuses(stringifyYaml(setIn(yamlForm, target, value)));
      }),
      { numRuns: RUNS },
    );
  });

  it("refuses an unknown field added to any object of a valid scenario, naming the file and a line", () => {
    // Every field name of the format is lower-case with hyphens; "<<" and "__proto__" mean more than a key.
    const unknownKey = fc.string({ unit: "binary", minLength: 1 }).filter((k) => !/^[a-z-]*$/.test(k) && k !== "<<" && k !== "__proto__");
    fc.assert(
      fc.property(validScenario, fc.nat(), unknownKey, anyJson, ({ yamlForm }, pick, key, value) => {
        const objects = [[], ...paths(yamlForm)].filter((path) => {
          const v = path.reduce<Json>((node, k) => (node as Record<string | number, Json>)[k], yamlForm);
          return v !== null && typeof v === "object" && !Array.isArray(v);
        });
        const at = objects[pick % objects.length];
        assert.throws(
          () => parseScenario(stringifyYaml(setIn(yamlForm, [...at, key], value)), FILE),
          (err: unknown) => err instanceof InputError && /^s\.yaml:\d+: /.test(err.message),
        );
      }),
      { numRuns: RUNS },
    );
  });
});
