/**
 * The DLQ mover: the path for orders no worker could report on (one that crashes every worker, a
 * worker killed on the last attempt). It reads MAX_DELIVERIES advisories from the stream that made
 * them durable, copies the original by sequence, deletes it from ORDERS, then acks the advisory.
 * Every step is idempotent, so each worker process runs one and they may race. When the consumer is
 * idle it also sweeps ORDERS for orders whose advisory was lost (sweepOrphans).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { deadLetter, type DeadLetterContext } from "./dead-letter.js";
import { errorMessage } from "../base/errors.js";
import { guessOrderId, parseOrder } from "./order.js";
import { deleteIfPresent } from "../nats/not-found.js";
import { PULL_EXPIRES_MS } from "../base/defaults.js";
import { copyToQuarantine } from "./quarantine.js";

/** The fields of io.nats.jetstream.advisory.v1.max_deliver that we use. */
export interface MaxDeliveriesAdvisory {
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
}

/** quarantined: the order's last delivery ended with no recorded failure; it went to the quarantine lane instead. */
export type MoveResult = "moved" | "already-gone" | "already-committed" | "already-dead-lettered" | "not-ours" | "quarantined";

export async function moveToDlq(ctx: DeadLetterContext, jsm: JetStreamManager, advisory: MaxDeliveriesAdvisory): Promise<MoveResult> {
  if (advisory.stream !== ctx.names.stream || advisory.consumer !== ctx.names.consumer) return "not-ours";
  const seq = advisory.stream_seq;
  const original = await jsm.streams.getMessage(ctx.names.stream, { seq });
  // Acked (or moved by another mover) since the advisory fired: nothing to do.
  if (!original) {
    ctx.trace?.(`move seq=${seq}: already gone`);
    return "already-gone";
  }
  const parsed = parseOrder(original.data);
  // Crash isolation (DESIGN.md): its last delivery ended with no recorded failure — the worker died or
  // lost its lease, maybe because of an order beside it. A suspect is retried alone, not charged.
  if (parsed.ok && !(await ctx.attempts.endedWithRecord(seq, advisory.deliveries)) && (await ctx.ledger.get(parsed.order.id)) === undefined) {
    await copyToQuarantine(ctx.js, ctx.names, { seq, subject: original.subject, headers: original.header }, original.data);
    await deleteIfPresent(jsm, ctx.names.stream, seq);
    ctx.trace?.(`quarantine ${parsed.order.id} seq=${seq}: max deliveries, no failure recorded for attempt ${advisory.deliveries}`);
    return "quarantined";
  }
  const result = await deadLetter(ctx, {
    subject: original.subject,
    streamSeq: seq,
    payload: original.data,
    headers: original.header,
    deliveries: advisory.deliveries,
    reason: "max-deliveries",
    validOrderId: parsed.ok ? parsed.order.id : undefined,
    displayOrderId: parsed.ok ? undefined : guessOrderId(original.data),
  });
  await deleteIfPresent(jsm, ctx.names.stream, seq); // false: another mover deleted it first
  ctx.trace?.(`deleted seq=${seq} from ${ctx.names.stream} after ${result}`);
  return result === "dead-lettered" ? "moved" : result;
}

/**
 * The orphan sweep, the mover's second path: orders JetStream will never deliver again and that no
 * DLQ mover heard of.
 *
 * A MAX_DELIVERIES advisory is a core-NATS message. When the advisory stream has no leader at that
 * instant (a cluster node just died) it is dropped, and the order stays in ORDERS with nothing pending
 * and nothing awaiting an ack — forever. When the consumer is idle, every message still in ORDERS at or
 * below its delivered sequence is such an orphan, or an acked message a broker crash resurrected
 * (nats-server 2.9 file store); each is moved as its advisory would have moved it, and a committed one
 * is just deleted. Under continuous load the sweep waits for an idle moment.
 */
export async function sweepOrphans(ctx: DeadLetterContext, jsm: JetStreamManager): Promise<MoveResult[]> {
  const { stream, consumer } = ctx.names;
  const info = await jsm.consumers.info(stream, consumer);
  // Anything pending or awaiting an ack (a nak'd order waiting out its delay too) may still be delivered.
  if (info.num_pending > 0 || info.num_ack_pending > 0) return [];
  const results: MoveResult[] = [];
  // Walk by the stream's first sequence, which always names a stored message: each move deletes it.
  // (A get with next_by_subj missed a message on a store recovered from kill -9, nats-server 2.9.10.)
  for (let previous = 0; ;) {
    const { messages, first_seq: seq } = (await jsm.streams.info(stream)).state;
    if (messages === 0 || seq > info.delivered.stream_seq || seq === previous) break;
    ctx.trace?.(`sweep seq=${seq}: delivered up to ${info.delivered.stream_seq}, nothing pending or awaiting an ack`);
    results.push(await moveToDlq(ctx, jsm, { stream, consumer, stream_seq: seq, deliveries: info.config.max_deliver ?? 0 }));
    previous = seq;
  }
  return results;
}

export interface MoverEvents {
  /** `advisory` is absent for an order the orphan sweep moved. */
  onMove?(result: MoveResult, advisory?: MaxDeliveriesAdvisory): void;
  onError?(err: unknown): void;
}

/** How often an idle pipeline is swept for orders whose advisory was lost (see sweepOrphans). */
const SWEEP_EVERY_MS = 5_000;

/** Runs until stop(): one advisory at a time (this path is rare; simplicity wins), plus the orphan sweep. */
export class DlqMover {
  private messages?: ConsumerMessages;
  private done?: Promise<void>;
  private sweepTimer?: NodeJS.Timeout;
  private sweeping: Promise<void> = Promise.resolve();

  constructor(
    private readonly nc: NatsConnection,
    private readonly ctx: DeadLetterContext,
    private readonly events: MoverEvents = {},
  ) {}

  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const consumer = await jetstream(this.nc).consumers.get(this.ctx.names.advisoryStream, this.ctx.names.moverConsumer);
    this.messages = await consumer.consume({ max_messages: 16, expires: PULL_EXPIRES_MS });
    this.done = this.loop(this.messages, jsm);
    this.sweepTimer = setInterval(() => {
      this.sweeping = this.sweeping.then(() => this.sweep(jsm));
    }, SWEEP_EVERY_MS);
  }

  private async sweep(jsm: JetStreamManager): Promise<void> {
    try {
      const results = await sweepOrphans(this.ctx, jsm);
      for (const result of results) this.events.onMove?.(result, undefined);
    } catch (err) {
      this.events.onError?.(err); // the next sweep retries
    }
  }

  private async loop(messages: ConsumerMessages, jsm: JetStreamManager): Promise<void> {
    for await (const msg of messages) await this.handle(msg, jsm);
  }

  private async handle(msg: JsMsg, jsm: JetStreamManager): Promise<void> {
    let advisory: MaxDeliveriesAdvisory;
    try {
      advisory = msg.json<MaxDeliveriesAdvisory>();
      if (typeof advisory.stream_seq !== "number") throw new Error("no stream_seq");
    } catch (err) {
      msg.ack(); // not an advisory we can act on: retrying cannot help
      this.events.onError?.(new Error(`ignored a malformed advisory (stream seq ${msg.seq}): ${errorMessage(err)}`));
      return;
    }
    try {
      const result = await moveToDlq(this.ctx, jsm, advisory);
      msg.ack();
      this.events.onMove?.(result, advisory);
    } catch (err) {
      // Left unacked work is retried: nak with a pause so a broken broker is not hammered.
      msg.nak(1000);
      this.events.onError?.(err);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.messages?.stop();
    await Promise.all([this.done, this.sweeping]);
  }
}
