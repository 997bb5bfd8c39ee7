/**
 * `orderq produce --via http://host:port`: the producer's orders sent through an intake gateway
 * instead of straight to JetStream, so chaos runs and benches exercise the gateway. Each order is a
 * `POST /orders` with `Idempotency-Key` = its id; the producer retries a timed-out or refused request
 * with the same key, which the gateway answers idempotently.
 *
 * Node's http client with a keep-alive agent, not fetch(): fetch spent several times the gateway's own
 * CPU per request (its streams, its Response objects, an AbortSignal pair per call), so on a shared
 * machine the load generator, not the gateway, set the rate (README, Performance). A bounded number of
 * keep-alive connections (INTAKE_CLIENT_CONNECTIONS) is reused by the requests in flight.
 */
import http from "node:http";
import https from "node:https";
import type { MsgHdrs } from "@nats-io/transport-node";
import * as defaults from "../base/defaults.js";
import type { PubAck } from "../nats/pub-acks.js";
import { NotStoredError, type Sender } from "../pipeline/producer.js";
import { errorMessage } from "../base/errors.js";

/** Statuses after which a retry would be refused the same way: the order was not stored. */
const FINAL = new Set([400, 401, 403, 404, 413, 415, 422]);

/** The gateway's answer to one POST. */
interface Answer {
  status: number;
  replayed: boolean;
  text: string;
}

export class HttpSender implements Sender {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly pending = new Set<http.ClientRequest>();
  private closed = false;

  /**
   * `base`: the gateway's URL (http://host:port or https://…); `token`: a bearer token, if the gateway
   * wants one; `timeoutMs`: how long one request may take, waiting for a connection included, before
   * it counts as timed out (maybe stored); `connections`: keep-alive connections to the gateway.
   */
  constructor(
    base: string,
    private readonly timeoutMs: number,
    private readonly token?: string,
    connections: number = defaults.INTAKE_CLIENT_CONNECTIONS,
  ) {
    this.url = new URL("/orders", base);
    const secure = this.url.protocol === "https:";
    // scheduling "fifo": requests take connections in the order they were made, so none waits behind
    // later ones (the agent's default, lifo, favours the most recently used connection).
    const options = { keepAlive: true, maxSockets: connections, scheduling: "fifo" as const };
    this.agent = secure ? new https.Agent(options) : new http.Agent(options);
    this.request = secure ? https.request : http.request;
  }

  /**
   * POSTs the payload with the Nats-Msg-Id of `headers` as its Idempotency-Key. Resolves with the
   * gateway's answer as a PubAck (`duplicate`: a replayed answer). Throws NotStoredError when the
   * gateway refused it or was not reached (retryable unless the refusal is final), any other Error
   * when the order may have been stored (a timeout, a connection lost mid-request, a 409 or a 503).
   */
  async publish(_subject: string, payload: string, headers: MsgHdrs): Promise<PubAck> {
    const key = headers.get("Nats-Msg-Id");
    let answer: Answer;
    try {
      answer = await this.post(payload, `"${key.replace(/[\\"]/g, "\\$&")}"`);
    } catch (err) {
      // Nothing listened: the gateway never saw the request.
      if ((err as { code?: string }).code === "ECONNREFUSED") throw new NotStoredError(`gateway refused the connection (${this.url})`, true);
      throw new Error(`no answer from the gateway: ${errorMessage(err)}`, { cause: err });
    }
    if (answer.status === 202) {
      const body = JSON.parse(answer.text) as { seq: number; stream: string };
      return { stream: body.stream, seq: body.seq, duplicate: answer.replayed };
    }
    const detail = (() => {
      try {
        return (JSON.parse(answer.text) as { detail?: string }).detail ?? answer.text;
      } catch {
        return answer.text;
      }
    })();
    const message = `HTTP ${answer.status}: ${detail}`;
    if (FINAL.has(answer.status)) throw new NotStoredError(message, false);
    throw new Error(message);
  }

  /** Aborts the requests still waiting and closes the connections. */
  close(): void {
    this.closed = true;
    for (const req of this.pending) req.destroy(new Error("sender closed"));
    this.agent.destroy();
  }

  private post(payload: string, idempotencyKey: string): Promise<Answer> {
    if (this.closed) return Promise.reject(new Error("sender closed"));
    return new Promise<Answer>((resolve, reject) => {
      const body = Buffer.from(payload);
      const req = this.request(this.url, {
        method: "POST",
        agent: this.agent,
        headers: {
          "content-type": "application/json",
          "content-length": body.length,
          "idempotency-key": idempotencyKey,
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
      });
      this.pending.add(req);
      // One timer for the whole request, queueing for a connection included (a socket timeout would
      // only count idle time on a connection).
      const timer = setTimeout(() => req.destroy(new Error(`timeout: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(req);
      };
      req.on("error", (err) => {
        done();
        reject(err);
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (err) => {
          done();
          reject(err);
        });
        // A connection lost mid-answer: 'close' without 'end' (the request may have been stored).
        res.on("close", () => {
          if (res.complete) return;
          done();
          reject(new Error("the connection closed before the answer was complete"));
        });
        res.on("end", () => {
          done();
          resolve({
            status: res.statusCode ?? 0,
            replayed: res.headers["idempotent-replayed"] === "true",
            text: Buffer.concat(chunks).toString("utf8"),
          });
        });
      });
      req.end(body);
    });
  }
}
