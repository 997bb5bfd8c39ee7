/**
 * The producer: publishes orders to `orders.<source>` with `Nats-Msg-Id` = order id, so a publish
 * retried after a timeout or a dropped connection is stored once (inside the duplicate window).
 */
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";
import { errorMessage } from "../base/errors.js";
import type { HistorySink, OpKind } from "./history.js";
import { orderSubject, type Names, type Source } from "../nats/names.js";
import { makeInvalidPayload, makeOrder, orderJson } from "./order.js";
import { InFlight } from "./in-flight.js";
import { NoStreamError, PubAckRequests, type PubAck } from "../nats/pub-acks.js";
import { pickWeighted, type Rng } from "../base/random.js";
import { setTimeout as sleep } from "node:timers/promises";

export interface ProduceOptions {
  names: Names;
  /** Orders to send; with durationMs, whichever ends first. */
  count: number;
  durationMs?: number;
  /** Orders per second; 0 sends as fast as the in-flight limit allows. */
  rate: number;
  sources: Partial<Record<Source, number>>;
  poisonRate: number;
  /** Orders whose handler error is non-retryable. */
  fatalRate: number;
  /** Orders that kill every worker that touches them. */
  crashRate: number;
  invalidRate: number;
  /** Probability that an order is published a second time with the same id. */
  duplicateRate: number;
  /** Publishes awaiting their PubAck at once. */
  inFlight: number;
  /** Per-try PubAck timeout. */
  publishTimeoutMs: number;
  /** Retries of one order stop after this long (keep it inside the stream's duplicate window). */
  retryForMs: number;
  idPrefix: string;
  /** Pad each order's JSON to at least this many bytes (benchmarks); unset: natural size. */
  payloadBytes?: number;
}

export interface ProduceStats {
  /** Publishes attempted (orders, plus re-sends). */
  published: number;
  /** PubAcks received, including duplicates. */
  accepted: number;
  /** PubAcks with duplicate: true (a re-send or retry that the stream absorbed). */
  duplicates: number;
  failed: number;
  indeterminate: number;
  /** Why the first failed publish failed (the history file has every one). */
  firstFailure?: string;
  /** Why the first indeterminate publish may or may not have been stored. */
  firstIndeterminate?: string;
  /** Tries beyond the first, over all publishes. */
  retries: number;
  elapsedMs: number;
}

export function emptyProduceStats(): ProduceStats {
  return { published: 0, accepted: 0, duplicates: 0, failed: 0, indeterminate: 0, retries: 0, elapsedMs: 0 };
}

/**
 * Where a producer sends its orders: JetStream (PubAckRequests, the default) or another way in that
 * answers with the PubAck it got (the HTTP gateway, `produce --via`). `headers` carries Nats-Msg-Id.
 */
export interface Sender {
  publish(subject: string, payload: string, headers: MsgHdrs): Promise<PubAck>;
  close(): void;
}

/**
 * A send that certainly stored nothing (an HTTP gateway's 4xx, a refused connection). `retryable`
 * false: the same request would be refused again (an invalid order), so it is not retried.
 */
export class NotStoredError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "NotStoredError";
  }
}

/** Neither a JetStream refusal nor "no responders" proves the message was not stored. */
function mayHaveBeenStored(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return false;
  if (err instanceof NoStreamError) return false;
  if (err instanceof NotStoredError) return false;
  return true;
}

interface Publication {
  id: string;
  subject: string;
  payload: string;
  kind: OpKind;
  source: string;
  resend: boolean;
}

export class Producer {
  readonly stats = emptyProduceStats();
  private stopped = false;
  private readonly inFlight = new InFlight();
  /** A publish that threw (the history sink failing): the run stops and rethrows it. */
  private failure?: { error: unknown };

  /** `target`: a NATS connection to publish on, or a function that opens another Sender. */
  constructor(
    private readonly target: NatsConnection | ((publishTimeoutMs: number) => Sender),
    private readonly options: ProduceOptions,
    private readonly rng: Rng,
    private readonly history?: HistorySink,
  ) {}

  /** Ends the run early (Ctrl-C); publishes in flight still complete and are recorded. */
  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<ProduceStats> {
    const o = this.options;
    // The same PubAck requests as the worker's ledger commit (see pub-acks.ts): js.publish() costs an
    // Error with a stack per PubAck. And a counter of publishes in flight: Promise.race over them would
    // subscribe to every one for each new order. README, Performance, has the figures.
    const publisher: Sender =
      typeof this.target === "function" ? this.target(o.publishTimeoutMs) : new PubAckRequests(this.target, o.publishTimeoutMs);
    const started = Date.now();
    const ended = () => this.stopped || this.failure !== undefined || (o.durationMs !== undefined && Date.now() - started >= o.durationMs);
    try {
      for (let i = 0; i < o.count && !ended(); i++) {
        if (o.rate > 0) {
          const due = started + (i * 1000) / o.rate;
          const wait = due - Date.now();
          if (wait > 0) await sleep(wait);
        }
        await this.inFlight.below(o.inFlight);
        if (ended()) break; // stopped while waiting
        for (const pub of this.nextPublications(i)) this.start(publisher, pub);
      }
    } finally {
      await this.inFlight.drained();
      publisher.close();
    }
    if (this.failure) throw this.failure.error;
    this.stats.elapsedMs = Date.now() - started;
    return this.stats;
  }

  private start(publisher: Sender, pub: Publication): void {
    this.inFlight.add();
    void this.publish(publisher, pub)
      .catch((error: unknown) => (this.failure ??= { error }))
      .finally(() => this.inFlight.done());
  }

  private nextPublications(i: number): Publication[] {
    const o = this.options;
    const rng = this.rng;
    const source = pickWeighted(o.sources as Record<Source, number>, rng);
    const id = `${o.idPrefix}-${String(i).padStart(6, "0")}`;
    const subject = orderSubject(o.names, source);
    const roll = rng();
    let kind: OpKind = "order";
    if (roll < o.invalidRate) kind = "invalid";
    else if (roll < o.invalidRate + o.poisonRate) kind = "poison";
    else if (roll < o.invalidRate + o.poisonRate + o.fatalRate) kind = "fatal";
    else if (roll < o.invalidRate + o.poisonRate + o.fatalRate + o.crashRate) kind = "crash";
    const payload =
      kind === "invalid"
        ? makeInvalidPayload(id, source, rng)
        : orderJson(makeOrder(id, source, rng, kind === "order" ? undefined : kind), o.payloadBytes);
    const first: Publication = { id, subject, payload, kind, source, resend: false };
    return o.duplicateRate > 0 && rng() < o.duplicateRate ? [first, { ...first, resend: true }] : [first];
  }

  private async publish(publisher: Sender, pub: Publication): Promise<void> {
    const o = this.options;
    const rec = this.history;
    this.stats.published++;
    rec?.record({ type: "invoke", id: pub.id, kind: pub.kind, source: pub.source, resend: pub.resend, time: Date.now() });
    const deadline = Date.now() + o.retryForMs;
    let maybeStored = false;
    const msgId = headers();
    msgId.set("Nats-Msg-Id", pub.id);
    for (let tries = 1; ; tries++) {
      let ack: PubAck;
      try {
        ack = await publisher.publish(pub.subject, pub.payload, msgId);
      } catch (err) {
        maybeStored ||= mayHaveBeenStored(err);
        const final = err instanceof NotStoredError && !err.retryable;
        if (final || Date.now() >= deadline || this.stopped) {
          const type = maybeStored ? "indeterminate" : "fail";
          this.stats[maybeStored ? "indeterminate" : "failed"]++;
          if (maybeStored) this.stats.firstIndeterminate ??= errorMessage(err);
          else this.stats.firstFailure ??= errorMessage(err);
          rec?.record({ type, id: pub.id, error: errorMessage(err), tries, time: Date.now() });
          return;
        }
        this.stats.retries++;
        await sleep(Math.min(2000, 100 * 2 ** Math.min(tries, 5)));
        continue;
      }
      // Outside the try: a history sink that throws here fails the run; it is not a failed publish.
      this.stats.accepted++;
      if (ack.duplicate) this.stats.duplicates++;
      rec?.record({ type: "ok", id: pub.id, seq: ack.seq, duplicate: ack.duplicate === true, tries, time: Date.now() });
      return;
    }
  }
}
