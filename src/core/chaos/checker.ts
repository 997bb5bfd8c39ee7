/**
 * The checker: pure functions from what was observed to a verdict. Inputs are the producers' history,
 * every ledger write, every DLQ entry and what is left in ORDERS; every id is classified once.
 */
import type { HistoryEvent, OpKind } from "../pipeline/history.js";
import type { LedgerWrite } from "../pipeline/ledger.js";
import { brokerFindings, type BrokerEvidence, type Delivery, type LostWrite } from "./broker-loss.js";

export const SAMPLE_SIZE = 20;

/** A DLQ entry or a message left in ORDERS, reduced to its identity. */
export interface MessageRef {
  /** The producer's `Nats-Msg-Id` (= the history id), when the headers carry it. */
  msgId?: string;
  /** The order id from the payload or the DLQ headers. */
  orderId?: string;
  /** The ORDERS sequence it was read from (a DLQ entry's original), as the broker said. */
  seq?: number;
}

export interface CheckExpectations {
  /** only-marked: poison/fatal/crash/invalid orders, and only they, are dead-lettered; all-marked: at least they. */
  dlq: "only-marked" | "all-marked" | "any";
  minFaults: number;
  minRedeliveries: number;
  /** The scenario injects something, so the run must show an effect of it. */
  faultsMustHaveEffect: boolean;
  /** Set when minFaults / minRedeliveries were scaled down from the scenario's own (a smaller --orders). */
  scaledFrom?: { orders: number; minFaults: number; minRedeliveries: number };
}

/**
 * The expectations of a run of `orders` orders, for a scenario written for `scenarioOrders`: repeating
 * faults run while orders are produced, so a smaller run sees proportionally fewer of them. Minimums
 * scale down in proportion (never below 1 where the scenario asks for some), never up.
 */
export function scaleExpectations<T extends Pick<CheckExpectations, "minFaults" | "minRedeliveries">>(
  expect: T,
  orders: number,
  scenarioOrders: number,
): T & Pick<CheckExpectations, "scaledFrom"> {
  if (orders >= scenarioOrders) return expect;
  const scale = (min: number) => (min === 0 ? 0 : Math.max(1, Math.floor((min * orders) / scenarioOrders)));
  const minFaults = scale(expect.minFaults);
  const minRedeliveries = scale(expect.minRedeliveries);
  if (minFaults === expect.minFaults && minRedeliveries === expect.minRedeliveries) return expect;
  return {
    ...expect,
    minFaults,
    minRedeliveries,
    scaledFrom: { orders: scenarioOrders, minFaults: expect.minFaults, minRedeliveries: expect.minRedeliveries },
  };
}

/** What the nemesis and the processes saw; the checker only compares it with the expectations. */
export interface Observed {
  faults: number;
  redeliveries: number;
  /** Redeliveries, producer retries, absorbed duplicates, restarts: any trace a fault left. */
  effects: number;
  /** The run ended within its time limit and the system became quiet. */
  quiet: boolean;
  /** The time limit stopped the producer or the faults before they were done. */
  cutShort?: boolean;
  /**
   * Fault kinds the scenario schedules by name that no window showed at work. `faults` also counts the
   * workload's own (marked orders, re-sends), which alone can meet `minFaults`.
   */
  unseenKinds?: string[];
}

export interface CheckInput {
  history: HistoryEvent[];
  ledger: LedgerWrite[];
  dlq: MessageRef[];
  remaining: MessageRef[];
  expect: CheckExpectations;
  observed: Observed;
  /** What the broker acknowledged and what its streams hold at the end: proof of writes it lost. */
  broker?: BrokerEvidence;
}

export const CATEGORIES = [
  "ok",
  "recovered",
  "deadLetteredExpected",
  "deadLetteredUnexpected",
  "lost",
  "brokerLost",
  "duplicated",
  "unexpected",
  "stuck",
  "notStored",
  "unresolved",
] as const;
export type Category = (typeof CATEGORIES)[number];

export interface CategoryResult {
  count: number;
  /** Up to SAMPLE_SIZE ids. */
  ids: string[];
}

export interface ExpectationResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface CheckResult {
  valid: boolean;
  /**
   * Processed orders whose message is still in ORDERS though it was acked: nats-server 2.9's file store
   * can forget recent work-queue deletions on kill -9. Not redelivered (the consumer is past them); the
   * ledger would absorb it if it were. Reported, not a violation.
   */
  residue: CategoryResult;
  /**
   * Acknowledged writes the broker lost, proven from its own answers (see broker-loss.ts): the
   * orders among `lost` whose loss they explain are counted as `brokerLost` instead.
   */
  brokerLostWrites: {
    count: number;
    byStream: Record<string, number>;
    samples: LostWrite[];
    /** Orders ORDERS delivered from a sequence other than the one it acknowledged: its replicas disagreed. */
    renumbered: number;
  };
  /** Invalid, and every violation is the broker's proven loss (orderq's own checks all hold). */
  brokerExplained: boolean;
  /** Distinct ids the producers tried to publish, and of those the ones with a PubAck. */
  invoked: number;
  accepted: number;
  categories: Record<Category, CategoryResult>;
  expectations: ExpectationResult[];
}

/** What happened to one id, gathered from every source. */
interface IdFacts {
  kind?: OpKind;
  accepted: boolean;
  indeterminate: boolean;
  commits: number;
  deadLetterClaims: number;
  dlqEntries: number;
  remaining: boolean;
  /** A write of this id (its order, its commit or claim, its DLQ copy) the broker acknowledged and lost. */
  brokerLost: boolean;
}

const refId = (ref: MessageRef): string | undefined => ref.msgId ?? ref.orderId;

function gather(input: CheckInput, lost: LostWrite[]): Map<string, IdFacts> {
  const facts = new Map<string, IdFacts>();
  const get = (id: string): IdFacts => {
    let f = facts.get(id);
    if (!f) {
      f = { accepted: false, indeterminate: false, commits: 0, deadLetterClaims: 0, dlqEntries: 0, remaining: false, brokerLost: false };
      facts.set(id, f);
    }
    return f;
  };
  for (const e of input.history) {
    if (e.type === "invoke") get(e.id).kind = e.kind;
    else if (e.type === "ok") get(e.id).accepted = true;
    else if (e.type === "indeterminate") get(e.id).indeterminate = true;
    else get(e.id);
  }
  for (const w of input.ledger) {
    const f = get(w.orderId);
    if (w.outcome.result === "committed") f.commits++;
    else f.deadLetterClaims++;
  }
  for (const ref of input.dlq) {
    const id = refId(ref);
    get(id ?? "(no id)").dlqEntries++;
  }
  for (const ref of input.remaining) get(refId(ref) ?? "(no id)").remaining = true;
  for (const w of lost) {
    const f = facts.get(w.id);
    if (f) f.brokerLost = true;
  }
  return facts;
}

/** The one category of an id. Order matters: the worst finding wins. */
function classify(f: IdFacts): Category {
  if (f.kind === undefined) return "unexpected"; // an outcome for something nobody published
  const deadLettered = f.dlqEntries > 0;
  if (f.commits > 1 || f.dlqEntries > 1 || f.deadLetterClaims > 1 || (f.commits > 0 && (deadLettered || f.deadLetterClaims > 0))) {
    return "duplicated";
  }
  const processed = f.commits + f.dlqEntries > 0;
  if (f.remaining && !processed) return "stuck";
  if (!f.accepted && !f.indeterminate) return processed ? "unexpected" : "notStored"; // every publish surely failed
  if (!processed) return f.accepted ? (f.brokerLost ? "brokerLost" : "lost") : "unresolved";
  if (!f.accepted) return "recovered";
  if (f.commits === 1) return "ok";
  return f.kind === "order" ? "deadLetteredUnexpected" : "deadLetteredExpected";
}

function expectations(input: CheckInput, facts: Map<string, IdFacts>, categories: Record<Category, CategoryResult>): ExpectationResult[] {
  const { expect, observed } = input;
  const out: ExpectationResult[] = [];
  out.push({
    name: "quiet",
    ok: observed.quiet,
    detail: observed.quiet
      ? "nothing pending, in flight or left in the stream at the end"
      : observed.cutShort
        ? "the time limit ended the run before its schedule did"
        : "pending, in-flight or leftover orders remained at the time limit",
  });
  if (expect.dlq === "only-marked") {
    const unexpected = categories.deadLetteredUnexpected;
    out.push({
      name: "dlq holds only marked orders",
      ok: unexpected.count === 0,
      detail:
        unexpected.count === 0
          ? "no ordinary order was dead-lettered"
          : `${unexpected.count} ordinary orders dead-lettered: ${unexpected.ids.slice(0, 5).join(", ")}`,
    });
  }
  if (expect.dlq !== "any") {
    const markedCommitted = [...facts.entries()].filter(([, f]) => f.kind !== undefined && f.kind !== "order" && f.commits > 0).map(([id]) => id);
    out.push({
      name: "every marked order dead-lettered",
      ok: markedCommitted.length === 0,
      detail:
        markedCommitted.length === 0
          ? "no poison, fatal, crash or invalid order was committed"
          : `${markedCommitted.length} marked orders committed: ${markedCommitted.slice(0, 5).join(", ")}`,
    });
  }
  out.push({
    name: "faults observed",
    ok: observed.faults >= expect.minFaults,
    detail: `${observed.faults} observed, at least ${expect.minFaults} expected${scaledNote(expect, "minFaults")}`,
  });
  if (observed.unseenKinds !== undefined) {
    out.push({
      name: "every scheduled fault seen at work",
      ok: observed.unseenKinds.length === 0,
      detail:
        observed.unseenKinds.length === 0
          ? "each fault kind the schedule names had an effect at least once"
          : `never seen at work: ${observed.unseenKinds.join(", ")}`,
    });
  }
  if (expect.minRedeliveries > 0) {
    out.push({
      name: "redeliveries",
      ok: observed.redeliveries >= expect.minRedeliveries,
      detail: `${observed.redeliveries} observed, at least ${expect.minRedeliveries} expected${scaledNote(expect, "minRedeliveries")}`,
    });
  }
  if (expect.faultsMustHaveEffect) {
    out.push({
      name: "faults had an effect",
      ok: observed.effects > 0,
      detail:
        observed.effects > 0 ? `${observed.effects} traces (redeliveries, retries, absorbed duplicates, restarts)` : "the faults changed nothing",
    });
  }
  return out;
}

function scaledNote(expect: CheckExpectations, key: "minFaults" | "minRedeliveries"): string {
  const from = expect.scaledFrom;
  return from && from[key] !== expect[key] ? ` (the scenario's ${from[key]} for ${from.orders} orders, scaled to this run's size)` : "";
}

/** Where the broker said each order was: the sequence every ledger write was made for, every DLQ entry's original, every leftover. */
function deliveries(input: CheckInput): Delivery[] {
  const out: Delivery[] = input.ledger.map((w) => ({ id: w.orderId, seq: w.outcome.streamSeq }));
  for (const ref of [...input.dlq, ...input.remaining]) {
    const id = refId(ref);
    if (id !== undefined && ref.seq !== undefined) out.push({ id, seq: ref.seq });
  }
  return out;
}

/**
 * Why a run is INVALID, one short line per broken rule: each violating category with its count and
 * first ids, then each failed expectation with its detail. Empty when the checker's verdict is valid.
 */
export function invalidReasons(result: CheckResult): string[] {
  const out: string[] = [];
  const labels: [Category, string][] = [
    ["lost", "lost"],
    ["brokerLost", "lost by the broker"],
    ["duplicated", "duplicated"],
    ["unexpected", "unexpected"],
    ["stuck", "stuck"],
  ];
  for (const [category, label] of labels) {
    const { count, ids } = result.categories[category];
    if (count > 0) out.push(`${count} ${label} (${ids.slice(0, 3).join(", ")}${count > 3 ? ", …" : ""})`);
  }
  for (const e of result.expectations) if (!e.ok) out.push(`${e.name}: ${e.detail}`);
  return out;
}

export function check(input: CheckInput): CheckResult {
  const findings = input.broker ? brokerFindings(input.history, deliveries(input), input.broker) : { lost: [], renumbered: [] };
  const lost = findings.lost;
  const facts = gather(input, lost);
  const categories = Object.fromEntries(CATEGORIES.map((c) => [c, { count: 0, ids: [] as string[] }])) as Record<Category, CategoryResult>;
  const residue: CategoryResult = { count: 0, ids: [] };
  let invoked = 0;
  let accepted = 0;
  for (const [id, f] of [...facts.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (f.kind !== undefined) invoked++;
    if (f.accepted) accepted++;
    const category = classify(f);
    if (f.remaining && category !== "stuck") {
      residue.count++;
      if (residue.ids.length < SAMPLE_SIZE) residue.ids.push(id);
    }
    const bucket = categories[category];
    bucket.count++;
    if (bucket.ids.length < SAMPLE_SIZE) bucket.ids.push(id);
  }
  const expectationResults = expectations(input, facts, categories);
  const orderqClean = (["lost", "duplicated", "unexpected", "stuck"] as const).every((c) => categories[c].count === 0);
  const expected = expectationResults.every((e) => e.ok);
  const byStream: Record<string, number> = {};
  for (const w of lost) byStream[w.stream] = (byStream[w.stream] ?? 0) + 1;
  const brokerLost = categories.brokerLost.count > 0;
  return {
    valid: orderqClean && !brokerLost && expected,
    brokerLostWrites: { count: lost.length, byStream, samples: lost.slice(0, SAMPLE_SIZE), renumbered: findings.renumbered.length },
    brokerExplained: orderqClean && brokerLost && expected,
    residue,
    invoked,
    accepted,
    categories,
    expectations: expectationResults,
  };
}
