import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";

/**
 * Reads a stream from the start or a given sequence (or one subject of it) with an ordered consumer, which leaves no
 * durable state behind. Ends when the consumer reports nothing pending, or a fetch comes back empty.
 */
export async function* readStream(js: JetStreamClient, stream: string, filterSubject?: string, startSeq?: number): AsyncGenerator<JsMsg> {
  const consumer = await js.consumers.get(stream, {
    ...(filterSubject ? { filter_subjects: filterSubject } : {}),
    ...(startSeq ? { opt_start_seq: startSeq } : {}),
  });
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
    let received = 0;
    let drained = false;
    for await (const msg of batch) {
      received++;
      yield msg;
      if (msg.info.pending === 0) drained = true;
    }
    if (received === 0 || drained) return;
  }
}
