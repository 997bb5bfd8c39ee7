import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";

/**
 * Reads a stream from the start or a given sequence (or one subject of it) with an ordered consumer, which leaves no
 * durable state behind. Ends as soon as the consumer reports nothing pending, a fetch comes back empty, or
 * `limit` messages were read (the last fetch asks for no more than that, so a page costs a page).
 */
export async function* readStream(
  js: JetStreamClient,
  stream: string,
  filterSubject?: string,
  startSeq?: number,
  limit = Number.POSITIVE_INFINITY,
): AsyncGenerator<JsMsg> {
  const consumer = await js.consumers.get(stream, {
    ...(filterSubject ? { filter_subjects: filterSubject } : {}),
    ...(startSeq ? { opt_start_seq: startSeq } : {}),
  });
  let left = limit;
  while (left > 0) {
    const batch = await consumer.fetch({ max_messages: Math.min(1000, left), expires: 1000 });
    let received = 0;
    for await (const msg of batch) {
      received++;
      left--;
      yield msg;
      // Done now, not when the pull expires: a batch the stream cannot fill would otherwise be
      // waited for until `expires` (1 s) on every read that reaches the end of the stream.
      if (msg.info.pending === 0) return;
    }
    if (received === 0) return;
  }
}
