/** orderq's own producer (the real Producer class, in this process) as the benchmark drives it. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { HistoryEvent, HistorySink } from "../pipeline/history.js";
import type { Names } from "../nats/names.js";
import { Producer, type ProduceOptions, type ProduceStats, type Sender } from "../pipeline/producer.js";
import { seededRng } from "../base/random.js";
import { BENCH_SOURCES, checkCounts } from "./baseline.js";
import { wallNow, type CpuUse, type Meter } from "./meter.js";
import { streamMessages } from "./topology.js";
import { perSecond, type PhaseName, type PhaseResult } from "./types.js";

/** Keeps what the benchmark needs of the producer's history: accepted ids, and publish times for latency. */
export class BenchSink implements HistorySink {
  readonly accepted: string[] = [];
  /** Wall-clock time of each publish call (the invoke event is recorded just before it). */
  readonly publishedAt = new Map<string, number>();
  /** Wall-clock time of each PubAck (or 202) as the producer got it, when publishes are timed. */
  readonly answeredAt = new Map<string, number>();
  constructor(private readonly timePublishes: boolean) {}

  record(event: HistoryEvent): void {
    if (event.type === "invoke") {
      // The event's own time is Date.now(): whole milliseconds, too coarse for a sub-ms latency.
      if (this.timePublishes) this.publishedAt.set(event.id, wallNow());
    } else if (event.type === "ok") {
      this.accepted.push(event.id);
      if (this.timePublishes) this.answeredAt.set(event.id, wallNow());
    }
  }
}

export interface ProduceSettings {
  count: number;
  /** Orders per second; 0 = as fast as the in-flight limit allows. */
  rate: number;
  inFlight: number;
  payloadBytes: number;
  seed: number;
  idPrefix: string;
}

/**
 * A Producer with `orderq produce`'s defaults and the bench's mix (no faults, duplicates or invalid
 * payloads), publishing straight to JetStream (`nc`) or through a Sender (`produce --via`'s HttpSender).
 */
export function newProducer(target: NatsConnection | ((timeoutMs: number) => Sender), names: Names, s: ProduceSettings, sink: BenchSink): Producer {
  const options: ProduceOptions = {
    names,
    count: s.count,
    rate: s.rate,
    sources: BENCH_SOURCES,
    poisonRate: 0,
    fatalRate: 0,
    crashRate: 0,
    invalidRate: 0,
    duplicateRate: 0,
    inFlight: s.inFlight,
    publishTimeoutMs: 5_000,
    retryForMs: 60_000,
    idPrefix: s.idPrefix,
    payloadBytes: s.payloadBytes,
  };
  return new Producer(target, options, seededRng(s.seed), sink);
}

/** Produce throughput; the stream it fills is the work phase's input. */
export async function producePhase(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  settings: Omit<ProduceSettings, "rate">,
  meter: Meter,
): Promise<{ result: PhaseResult; acceptedIds: string[] }> {
  const sink = new BenchSink(false);
  const producer = newProducer(nc, names, { ...settings, rate: 0 }, sink);
  const t0 = meter.mark();
  const stats = await producer.run();
  const t1 = meter.mark();
  const stored = await streamMessages(jsm, names.stream);
  const result = producedResult({
    phase: "produce",
    expected: settings.count,
    stats,
    stored,
    words: { accepted: "accepted", duplicates: "duplicates" },
    window: "Producer.run(): first publish → last PubAck",
    cpu: meter.cpu(t0, t1),
    t0,
    t1,
  });
  return { result, acceptedIds: sink.accepted };
}

export interface ProducedRun {
  phase: PhaseName;
  /** Orders the producer was asked for. */
  expected: number;
  /** Producer.run()'s stats. */
  stats: ProduceStats;
  /** Messages the orders stream gained in the phase. */
  stored: number;
  /** What the detail line calls an accepted order and an absorbed re-send ("answered 202", "replayed" through a gateway). */
  words: { accepted: string; duplicates: string };
  /** How the window was measured, and the CPU used in it. */
  window: string;
  cpu: CpuUse;
  /** The window's meter marks (ms). */
  t0: number;
  t1: number;
}

/**
 * The result of a phase that produced orders: its rate over the window (accepted orders per second),
 * passed when every order was stored once and none failed or ended indeterminate.
 */
export function producedResult(r: ProducedRun): PhaseResult {
  const { stats, stored } = r;
  const notStored = stats.failed + stats.indeterminate;
  const counts = checkCounts(
    r.expected,
    stored,
    stats.duplicates,
    `${stats.accepted} ${r.words.accepted}, ${stored} stored, ${stats.duplicates} ${r.words.duplicates}, ${notStored} failed or indeterminate, ${stats.retries} retries`,
  );
  return {
    phase: r.phase,
    count: stats.accepted,
    elapsedMs: Math.round(r.t1 - r.t0),
    rate: perSecond(stats.accepted, r.t1 - r.t0),
    window: r.window,
    cpu: r.cpu,
    verification: { ...counts, ok: counts.ok && notStored === 0 },
  };
}
