/**
 * The yardstick: what the official client and the server do with no orderq code in the way. Raw
 * JetStream publish with many PubAcks in flight, then a minimal consume + plain ack loop (at-least-once,
 * no ledger) on the same kind of durable pull consumer the workers use; and the floor of exactly-once,
 * the same loop with the ledger write in it.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { InFlight } from "../pipeline/in-flight.js";
import { Ledger } from "../pipeline/ledger.js";
import type { Outcome } from "../pipeline/outcome-store.js";
import { kvStreamName, orderSubject, type Names, type Source } from "../nats/names.js";
import { makeOrder, orderJson } from "../pipeline/order.js";
import { pickWeighted, type Rng } from "../base/random.js";
import { PULL_EXPIRES_MS } from "../base/defaults.js";
import type { Meter } from "./meter.js";
import { settledStreamMessages, streamMessages } from "./topology.js";
import { perSecond, type PhaseResult, type Verification } from "./types.js";

/** The source mix of `orderq produce`'s default. */
export const BENCH_SOURCES: Record<Source, number> = { web: 0.5, mobile: 0.3, api: 0.2 };

interface Outgoing {
  id: string;
  subject: string;
  payload: string;
}

/** Valid orders of the benchmark's size, generated before the clock starts. */
export function baselineOrders(names: Names, idPrefix: string, count: number, payloadBytes: number, rng: Rng): Outgoing[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `${idPrefix}-${i}`;
    const source = pickWeighted(BENCH_SOURCES, rng);
    return { id, subject: orderSubject(names, source), payload: orderJson(makeOrder(id, source, rng), payloadBytes) };
  });
}

/** js.publish with a msgID, `inFlight` PubAcks outstanding at any time. */
export async function publishBaseline(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  orders: Outgoing[],
  inFlight: number,
  meter: Meter,
): Promise<PhaseResult> {
  const t0 = meter.mark();
  const duplicates = await publishAll(jetstream(nc), orders, inFlight);
  const t1 = meter.mark();
  const stored = await streamMessages(jsm, names.stream);
  const verification = checkCounts(orders.length, stored, duplicates, `${stored} stored, ${duplicates} PubAcks marked duplicate`);
  return result("publish", orders.length, t0, t1, "first publish → last PubAck", meter, verification);
}

/** Returns how many PubAcks said duplicate. */
export async function publishAll(js: JetStreamClient, orders: Outgoing[], inFlight: number): Promise<number> {
  let next = 0;
  let duplicates = 0;
  // Each lane awaits one PubAck at a time: a fixed number of lanes is a fixed number in flight.
  const lane = async () => {
    while (next < orders.length) {
      const o = orders[next++];
      if ((await js.publish(o.subject, o.payload, { msgID: o.id })).duplicate) duplicates++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, orders.length) }, lane));
  return duplicates;
}

/** Pull with the workers' batch size, plain ack (fire and forget), no parsing, no ledger. */
export async function consumeBaseline(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  count: number,
  batch: number,
  meter: Meter,
  stallMs: number,
): Promise<PhaseResult> {
  const { received, t0, t1 } = await consumeTimed(nc, names, { count, batch, meter, stallMs }, (msg) => msg.ack());
  const left = await settledStreamMessages(jsm, names.stream);
  // Work-queue retention deletes what is acked: any delivery beyond the deleted ones was a redelivery.
  const redelivered = Math.max(0, received - (count - left));
  const verification = checkCounts(
    count,
    count - left,
    redelivered,
    `${received} received and acked, ${redelivered} redelivered, ${left} left in the stream`,
  );
  return result("consume", received, t0, t1, "consume start → last ack processed (flush)", meter, verification);
}

/**
 * The least an exactly-once consumer does per message with this client and server: consume, record a
 * ledger outcome (the worker's own Ledger.record: create-if-absent on its PubAck requests), ack. No
 * validation, no handler, no worker bookkeeping, keyed by stream sequence; at most `batch` in flight,
 * like one worker. orderq's work phase is compared with it.
 */
export async function floorBaseline(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  count: number,
  batch: number,
  meter: Meter,
  stallMs: number,
): Promise<PhaseResult> {
  const ledger = await Ledger.open(nc, names);
  let failed = 0;
  const { received, t0, t1 } = await consumeTimed(nc, names, { count, batch, meter, stallMs }, async (msg) => {
    const outcome: Outcome = {
      result: "committed",
      worker: "floor",
      attempt: msg.info.deliveryCount,
      streamSeq: msg.seq,
      at: new Date().toISOString(),
    };
    try {
      await ledger.record(String(msg.seq), outcome); // written, or already there (a redelivery): ack either way
      msg.ack();
    } catch {
      failed++; // left unacked: it shows in the count of what is left below
    }
  }).finally(() => ledger.close());
  const left = await settledStreamMessages(jsm, names.stream);
  const written = await streamMessages(jsm, kvStreamName(names.ledgerBucket));
  const counts = checkCounts(count, written, 0, `${written} ledger writes, ${failed} writes or acks failed, ${left} left unacked in the stream`);
  return result("floor", received, t0, t1, "consume start → last ack processed (flush)", meter, { ...counts, ok: counts.ok && left === 0 });
}

/**
 * The consume loop both consumer baselines share: `count` messages through `handle`, stopped early
 * when nothing arrives for a whole `stallMs` (what is missing is then reported lost). A handler that
 * returns a promise runs with at most `batch` in flight, all finished before the clock stops; a
 * synchronous one (plain ack) costs no await per message. Timed from before the consume to after the
 * flush that follows the last ack.
 */
export async function consumeTimed(
  nc: NatsConnection,
  names: Names,
  o: { count: number; batch: number; meter: Meter; stallMs: number },
  handle: (msg: JsMsg) => void | Promise<void>,
): Promise<{ received: number; t0: number; t1: number }> {
  const consumer = await jetstream(nc).consumers.get(names.stream, names.consumer);
  const inFlight = new InFlight();
  const t0 = o.meter.mark();
  const messages = await consumer.consume({ max_messages: o.batch, expires: PULL_EXPIRES_MS });
  let received = 0;
  let seen = 0;
  const stall = setInterval(() => {
    if (received === seen) messages.stop();
    seen = received;
  }, o.stallMs);
  try {
    for await (const msg of messages) {
      if (++received >= o.count) messages.stop();
      const pending = handle(msg);
      if (!pending) continue;
      inFlight.add();
      void pending.finally(() => inFlight.done());
      await inFlight.below(o.batch);
    }
    await inFlight.drained();
  } finally {
    clearInterval(stall);
  }
  await nc.flush(); // the server has processed every ack once the flush returns
  return { received, t0, t1: o.meter.mark() };
}

/** The baselines' verdict from counts alone (they have no ledger): what is missing is lost, what is extra unexpected. */
export function checkCounts(expected: number, delivered: number, duplicated: number, detail: string): Verification {
  const lost = Math.max(0, expected - delivered);
  const unexpected = Math.max(0, delivered - expected);
  return { ok: lost + duplicated + unexpected === 0, detail, expected, lost, duplicated, unexpected };
}

function result(
  phase: "publish" | "consume" | "floor",
  count: number,
  t0: number,
  t1: number,
  window: string,
  meter: Meter,
  verification: Verification,
): PhaseResult {
  const elapsedMs = t1 - t0;
  return { phase, count, elapsedMs: Math.round(elapsedMs), rate: perSecond(count, elapsedMs), window, cpu: meter.cpu(t0, t1), verification };
}
