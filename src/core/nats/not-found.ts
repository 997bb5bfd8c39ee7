/**
 * "Not found", decided by JetStream API error code: the one place that knows which codes mean it.
 * Message texts differ between server versions and code paths, so nothing matches on them.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";

/** JSSequenceNotFoundErrF: a clustered stream's delete of a sequence it does not hold. */
const SEQUENCE_NOT_FOUND = 10043;
/**
 * JSStreamMsgDeleteFailedF: a delete the store refused. Its text carries the store's reason: "no
 * message found" or "stream store EOF" (gone), or "message delete not permitted" (deny_delete).
 */
const MESSAGE_DELETE_FAILED = 10057;

const CODES = {
  stream: [JetStreamApiCodes.StreamNotFound],
  consumer: [JetStreamApiCodes.ConsumerNotFound],
  message: [JetStreamApiCodes.NoMessageFound, SEQUENCE_NOT_FOUND],
} as const;

export type Missing = keyof typeof CODES;

/** Whether `err` is JetStream saying that one of `kinds` (default: a stream or a consumer) does not exist. */
export function isNotFound(err: unknown, ...kinds: Missing[]): boolean {
  if (!(err instanceof JetStreamApiError)) return false;
  const wanted = kinds.length > 0 ? kinds : (["stream", "consumer"] as const);
  return wanted.some((kind) => (CODES[kind] as readonly number[]).includes(err.code));
}

/**
 * Deletes one stored message; false when it was gone already (another mover, replay or purge won).
 * A refused delete (10057) names its reason only in text, so the stream is asked whether the message
 * is still there instead: gone means the goal is reached, present means a real refusal.
 */
export async function deleteIfPresent(jsm: JetStreamManager, stream: string, seq: number): Promise<boolean> {
  try {
    return await jsm.streams.deleteMessage(stream, seq, false);
  } catch (err) {
    if (isNotFound(err, "message")) return false;
    if (err instanceof JetStreamApiError && err.code === MESSAGE_DELETE_FAILED && (await jsm.streams.getMessage(stream, { seq })) === null) {
      return false;
    }
    throw err;
  }
}
