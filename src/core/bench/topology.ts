/** Fresh JetStream resources per phase, so no phase measures a stream another phase has used. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { namesFor, type Names } from "../nats/names.js";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_SETTINGS, ensureTopology } from "../nats/topology.js";

/** Names unique to one phase of one run; `tag` keeps two benchmarks on one server apart. */
export function phaseNames(tag: string, phase: string): Names {
  const stream = `BENCH_${tag}_${phase}`;
  return namesFor({
    stream,
    consumer: "workers",
    dlqStream: `${stream}_DLQ`,
    ledgerBucket: `${stream.toLowerCase()}_ledger`,
  });
}

/**
 * The whole orderq topology with the default settings (the baseline uses its stream and consumer too),
 * but for the consumer's max ack pending: `maxAckPending` (orders delivered and not yet acked).
 *
 * The bench sets it to what its workers may hold (--concurrency × --workers), so that the baselines
 * hold no more than orderq does. A worker pulls only as many orders as it has free slots (see
 * Worker.pullLoop), while the baselines' consume() keeps pulling whatever its loop is doing: with the
 * default 1000 it could hold up to 1000 orders against a worker's 256, a deeper pipeline than the worker is
 * allowed, and `work ÷ floor` measured that depth as much as orderq's own cost.
 */
export async function createTopology(nc: NatsConnection, names: Names, maxAckPending: number): Promise<void> {
  await ensureTopology(nc, { ...DEFAULT_SETTINGS, names, maxAckPending });
}

export async function streamMessages(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

/**
 * Messages left in a work-queue stream once the acks already sent have been applied. The server
 * applies an ack after answering the flush that followed it, so a count read at once can still hold
 * acked messages. Waits until the count holds still.
 */
export async function settledStreamMessages(jsm: JetStreamManager, stream: string, stillMs = 500, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let count = await streamMessages(jsm, stream);
  let stillSince = Date.now();
  while (count > 0 && Date.now() - stillSince < stillMs && Date.now() < deadline) {
    await sleep(50);
    const now = await streamMessages(jsm, stream);
    if (now !== count) [count, stillSince] = [now, Date.now()];
  }
  return count;
}
