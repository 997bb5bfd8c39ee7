/**
 * The orphan sweep: orders JetStream will never deliver again and no DLQ mover heard of.
 *
 * A MAX_DELIVERIES advisory is a core-NATS message. When the advisory stream has no leader at that
 * instant (a cluster node just died) it is dropped, and the order stays in ORDERS with nothing pending
 * and nothing awaiting an ack — forever (found by the `everything` chaos scenario, reproduced by killing
 * the advisory stream's leader as an order reached max deliver). When the consumer is idle, every
 * message still in ORDERS at or below its delivered sequence is such an orphan, or an acked message a
 * broker crash resurrected (nats-server 2.9 file store); each is moved as its advisory would have moved
 * it, and a committed one is just deleted. Under continuous load the sweep waits for an idle moment.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { DeadLetterContext } from "./dead-letter.js";
import { moveToDlq, type MoveResult } from "./dlq-mover.js";

export async function sweepOrphans(ctx: DeadLetterContext, jsm: JetStreamManager): Promise<MoveResult[]> {
  const { stream, consumer } = ctx.names;
  const info = await jsm.consumers.info(stream, consumer);
  // Anything pending or awaiting an ack (a nak'd order waiting out its delay too) may still be delivered.
  if (info.num_pending > 0 || info.num_ack_pending > 0) return [];
  const results: MoveResult[] = [];
  // Walk by the stream's first sequence, which always names a stored message: each move deletes it.
  // (A get with next_by_subj missed a message on a store recovered from kill -9, nats-server 2.9.10.)
  for (let previous = 0; ; ) {
    const { messages, first_seq: seq } = (await jsm.streams.info(stream)).state;
    if (messages === 0 || seq > info.delivered.stream_seq || seq === previous) break;
    ctx.trace?.(`sweep seq=${seq}: delivered up to ${info.delivered.stream_seq}, nothing pending or awaiting an ack`);
    results.push(await moveToDlq(ctx, jsm, { stream, consumer, stream_seq: seq, deliveries: info.config.max_deliver ?? 0 }));
    previous = seq;
  }
  return results;
}
