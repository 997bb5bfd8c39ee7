/**
 * `orderq produce --via http://host:port`: the producer's orders sent through an intake gateway
 * instead of straight to JetStream, so chaos runs and benches exercise the gateway. Each order is a
 * `POST /orders` with `Idempotency-Key` = its id; the producer retries a timed-out or refused request
 * with the same key, which the gateway answers idempotently.
 */
import type { MsgHdrs } from "@nats-io/transport-node";
import type { PubAck } from "../nats/pub-acks.js";
import { NotStoredError, type Sender } from "../pipeline/producer.js";
import { errorMessage } from "../base/errors.js";

/** Statuses after which a retry would be refused the same way: the order was not stored. */
const FINAL = new Set([400, 401, 403, 404, 413, 415, 422]);

export class HttpSender implements Sender {
  private readonly url: string;
  private readonly controller = new AbortController();

  /**
   * `base`: the gateway's URL (http://host:port); `token`: a bearer token, if the gateway wants one;
   * `timeoutMs`: how long one request may take before it counts as timed out (maybe stored).
   */
  constructor(
    base: string,
    private readonly timeoutMs: number,
    private readonly token?: string,
  ) {
    this.url = new URL("/orders", base).toString();
  }

  /**
   * POSTs the payload with the Nats-Msg-Id of `headers` as its Idempotency-Key. Resolves with the
   * gateway's answer as a PubAck (`duplicate`: a replayed answer). Throws NotStoredError when the
   * gateway refused it or was not reached (retryable unless the refusal is final), any other Error
   * when the order may have been stored (a timeout, a 409 or a 503).
   */
  async publish(_subject: string, payload: string, headers: MsgHdrs): Promise<PubAck> {
    const key = headers.get("Nats-Msg-Id");
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)]);
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": `"${key.replace(/[\\"]/g, "\\$&")}"`,
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: payload,
        signal,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      // Nothing listened: the gateway never saw the request.
      if (cause?.code === "ECONNREFUSED") throw new NotStoredError(`gateway refused the connection (${this.url})`, true);
      throw new Error(`no answer from the gateway within ${this.timeoutMs} ms: ${errorMessage(cause ?? err)}`, { cause: err });
    }
    const text = await res.text().catch(() => "");
    if (res.status === 202) {
      const body = JSON.parse(text) as { seq: number; stream: string };
      return { stream: body.stream, seq: body.seq, duplicate: res.headers.get("idempotent-replayed") === "true" };
    }
    const detail = (() => {
      try {
        return (JSON.parse(text) as { detail?: string }).detail ?? text;
      } catch {
        return text;
      }
    })();
    const message = `HTTP ${res.status}: ${detail}`;
    if (FINAL.has(res.status)) throw new NotStoredError(message, false);
    throw new Error(message);
  }

  /** Aborts the requests still waiting. */
  close(): void {
    this.controller.abort();
  }
}
