/**
 * `orderq produce --via http://host:port[,http://host2:port]`: the producer's orders sent through
 * intake gateways instead of straight to JetStream, so chaos runs and benches exercise the gateway.
 * Each order is a `POST /orders` with `Idempotency-Key` = its id. A request that no gateway answered
 * (connection refused, reset, timed out) is tried at once on the next gateway with the same key; the
 * producer retries the whole send after a 409, a 503 or when every gateway failed, with the same key,
 * which the gateways answer idempotently (they share one key store).
 */
import type { MsgHdrs } from "@nats-io/transport-node";
import type { PubAck } from "../nats/pub-acks.js";
import { NotStoredError, type Sender } from "../pipeline/producer.js";
import { errorMessage } from "../base/errors.js";

/** Statuses after which a retry would be refused the same way: the order was not stored. */
const FINAL = new Set([400, 401, 403, 404, 413, 415, 422]);

/** One try that reached no gateway's answer: `refused` proves the gateway never saw the request. */
interface Unanswered {
  url: string;
  refused: boolean;
  error: string;
}

export class HttpSender implements Sender {
  private readonly urls: string[];
  private readonly controller = new AbortController();
  /** The gateway the next order starts with: orders are spread round-robin over the gateways. */
  private next = 0;

  /**
   * `bases`: the gateways' URLs (http://host:port), at least one; `token`: a bearer token, if the
   * gateways want one; `timeoutMs`: how long one request may take before it counts as timed out
   * (maybe stored).
   */
  constructor(
    bases: string | string[],
    private readonly timeoutMs: number,
    private readonly token?: string,
  ) {
    const list = typeof bases === "string" ? [bases] : bases;
    if (list.length === 0) throw new Error("HttpSender needs at least one gateway URL");
    this.urls = list.map((base) => new URL("/orders", base).toString());
  }

  /**
   * POSTs the payload with the Nats-Msg-Id of `headers` as its Idempotency-Key, to one gateway after
   * the other (each at most once) until one answers. Resolves with the gateway's answer as a PubAck
   * (`duplicate`: a replayed answer). Throws NotStoredError when a gateway refused the order or every
   * gateway refused the connection (retryable unless the refusal is final), any other Error when the
   * order may have been stored (a timeout or reset somewhere, a 409 or a 503).
   */
  async publish(_subject: string, payload: string, headers: MsgHdrs): Promise<PubAck> {
    const key = headers.get("Nats-Msg-Id");
    const start = this.next++ % this.urls.length;
    const unanswered: Unanswered[] = [];
    for (let i = 0; i < this.urls.length; i++) {
      const url = this.urls[(start + i) % this.urls.length];
      const res = await this.post(url, key, payload);
      if ("refused" in res) {
        unanswered.push(res);
        if (this.controller.signal.aborted) break;
        continue;
      }
      return answerOf(res.status, res.text, res.replayed);
    }
    const detail = unanswered.map((u) => `${u.url}: ${u.error}`).join("; ");
    // Only a refused connection proves a gateway never saw the request; one reset or timeout and
    // the order may be stored.
    if (unanswered.every((u) => u.refused)) throw new NotStoredError(`no gateway took the connection (${detail})`, true);
    throw new Error(`no answer from any gateway within ${this.timeoutMs} ms each: ${detail}`);
  }

  /** One POST; a failure to get an answer (refused, reset, timed out) is returned, not thrown. */
  private async post(url: string, key: string, payload: string): Promise<{ status: number; text: string; replayed: boolean } | Unanswered> {
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)]);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": `"${key.replace(/[\\"]/g, "\\$&")}"`,
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: payload,
        signal,
      });
      // A reset while the body is read is an unanswered request too: the text throws then.
      const text = await res.text();
      return { status: res.status, text, replayed: res.headers.get("idempotent-replayed") === "true" };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      // Nothing listened: the gateway never saw the request.
      return { url, refused: cause?.code === "ECONNREFUSED", error: errorMessage(cause ?? err) };
    }
  }

  /** Aborts the requests still waiting. */
  close(): void {
    this.controller.abort();
  }
}

/** A gateway's answer as a PubAck, or the error the producer classifies (see publish). */
function answerOf(status: number, text: string, replayed: boolean): PubAck {
  if (status === 202) {
    const body = JSON.parse(text) as { seq: number; stream: string };
    return { stream: body.stream, seq: body.seq, duplicate: replayed };
  }
  const detail = (() => {
    try {
      return (JSON.parse(text) as { detail?: string }).detail ?? text;
    } catch {
      return text;
    }
  })();
  const message = `HTTP ${status}: ${detail}`;
  if (FINAL.has(status)) throw new NotStoredError(message, false);
  throw new Error(message);
}
