/**
 * `orderq produce --via http://host:port`: the producer's orders sent through an intake gateway
 * instead of straight to JetStream, so chaos runs and benches exercise the gateway. Each order is a
 * `POST /orders` with `Idempotency-Key` = its id; the producer retries a timed-out or refused request
 * with the same key, which the gateway answers idempotently. With several gateways (sharing one key
 * store) orders are spread over them round-robin, and a request one did not answer (connection
 * refused, reset, timed out) is sent at once to the next with the same key.
 *
 * undici's Pool, driven through its dispatch() handler interface, not fetch() nor Node's http client:
 * fetch spent several times the gateway's own CPU per request (its streams, its Response objects, an
 * AbortSignal pair per call), and Node's http client (a ClientRequest and an IncomingMessage stream per
 * request) still cost about as much CPU per request as the gateway itself, on the same two cores as the
 * gateway and nats-server (README, Performance). dispatch() hands the status, headers and body chunks
 * to plain callbacks. A bounded number of keep-alive connections (INTAKE_CLIENT_CONNECTIONS) is reused
 * by the requests in flight; undici never retries a POST by itself.
 */
import http from "node:http";
import https from "node:https";
import type { MsgHdrs } from "@nats-io/transport-node";
import { Pool, type Dispatcher } from "undici";
import * as defaults from "../base/defaults.js";
import type { PubAck } from "../nats/pub-acks.js";
import { NotStoredError, type Sender } from "../pipeline/producer.js";
import { EnvironmentError, errorMessage } from "../base/errors.js";

/** Why a request closed before it was handed a connection failed: it was never sent. */
const NOT_SENT = "sender closed before the request was sent";

/** Statuses after which a retry would be refused the same way: the order was not stored. */
const FINAL = new Set([400, 401, 403, 404, 413, 415, 422]);

/** The gateway's answer to one POST. */
interface Answer {
  status: number;
  replayed: boolean;
  text: string;
}

/**
 * One gateway: its URL, its keep-alive connections, and the requests waiting for one. The sender
 * queues them itself rather than in the Pool: a request given up on (timed out) while queued in the
 * Pool can only be aborted once the Pool has given it a connection, and undici's abort then destroys
 * that connection — under a gateway too slow to answer in time, a new TCP connection per request.
 * Here a request given up on is dropped from the queue before it ever reaches the Pool.
 */
interface Target {
  url: URL;
  pool: Pool;
  /** Requests handed to the Pool and not yet settled: at most `connections`. */
  dispatched: number;
  /** Starts of the requests waiting, oldest first; a start whose request was given up on does nothing. */
  waiting: Array<() => boolean>;
}

export class HttpSender implements Sender {
  private readonly targets: Target[];
  /** The requests not yet answered: each one's way to fail at once (close()). */
  private readonly pending = new Set<() => void>();
  private closed = false;
  /** The gateway the next order starts with. */
  private next = 0;
  private readonly connections: number;

  /**
   * `bases`: the gateways' URLs (http://host:port or https://…), at least one; `token`: a bearer token,
   * if the gateways want one; `timeoutMs`: how long one request may take, waiting for a connection
   * included, before it counts as timed out (maybe stored); `connections`: keep-alive connections to
   * each gateway.
   */
  constructor(
    bases: string | string[],
    private readonly timeoutMs: number,
    private readonly token?: string,
    connections: number = defaults.INTAKE_CLIENT_CONNECTIONS,
  ) {
    const list = typeof bases === "string" ? [bases] : bases;
    if (list.length === 0) throw new Error("HttpSender needs at least one gateway URL");
    this.connections = connections;
    // Requests beyond the connections wait in the order they were made (as the http agent's "fifo"
    // scheduling did), so none waits behind later ones.
    this.targets = list.map((base) => {
      const url = new URL("/orders", base);
      return { url, pool: new Pool(url.origin, { connections, pipelining: 1 }), dispatched: 0, waiting: [] };
    });
  }

  /**
   * POSTs the payload with the Nats-Msg-Id of `headers` as its Idempotency-Key, to one gateway after
   * the other (each at most once, starting round-robin) until one answers. Resolves with the gateway's
   * answer as a PubAck (`duplicate`: a replayed answer). Throws NotStoredError when a gateway refused
   * the order or every gateway refused the connection (retryable unless the refusal is final), any
   * other Error when the order may have been stored (a timeout or a connection lost mid-request at
   * some gateway, a 409 or a 503). After close(), or closed while it waited for a connection (never
   * sent): NotStoredError, final.
   */
  async publish(_subject: string, payload: string, headers: MsgHdrs): Promise<PubAck> {
    const key = headers.get("Nats-Msg-Id");
    const idempotencyKey = `"${key.replace(/[\\"]/g, "\\$&")}"`;
    const start = this.next++ % this.targets.length;
    // `sent`: false for a request closed before it had a connection (post() rejects with NotStoredError).
    const unanswered: { url: URL; refused: boolean; sent: boolean; error: string }[] = [];
    let answer: Answer | undefined;
    for (let i = 0; i < this.targets.length && !answer && !this.closed; i++) {
      const target = this.targets[(start + i) % this.targets.length];
      try {
        answer = await this.post(target, payload, idempotencyKey);
      } catch (err) {
        // Only a refused connection proves the gateway never saw the request.
        const refused = (err as { code?: string }).code === "ECONNREFUSED";
        unanswered.push({ url: target.url, refused, sent: !(err instanceof NotStoredError), error: errorMessage(err) });
      }
    }
    if (!answer) {
      if (unanswered.every((u) => !u.sent)) throw new NotStoredError(NOT_SENT, false);
      const detail = unanswered.map((u) => `${u.url}: ${u.error}`).join("; ");
      if (unanswered.every((u) => u.refused)) throw new NotStoredError(`no gateway took the connection (${detail})`, true);
      throw new Error(`no answer from the gateway: ${detail}`);
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

  /**
   * Fails every request not yet answered, at once, and closes the connections: one waiting for a
   * connection was never sent (publish throws NotStoredError, final); one sent may have been stored
   * (a plain Error, "sender closed"). None is sent afterwards.
   */
  close(): void {
    this.closed = true;
    for (const abandon of [...this.pending]) abandon();
    for (const target of this.targets) target.waiting.length = 0;
    for (const target of this.targets) target.pool.destroy().catch(() => undefined);
  }

  private post(target: Target, payload: string, idempotencyKey: string): Promise<Answer> {
    if (this.closed) return Promise.reject(new NotStoredError(NOT_SENT, false));
    return new Promise<Answer>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let settled = false;
      let status = 0;
      let replayed = false;
      const chunks: Buffer[] = [];
      let started = false;
      const settle = (err: Error | undefined, answer?: Answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.pending.delete(abandon);
        // After a failure (a timeout), the next request starts only once this turn's other expired
        // timers have run: requests queued as long as this one have timed out too, and are not sent.
        if (started && err) setImmediate(() => this.dispatched(target));
        else if (started) this.dispatched(target);
        if (err) {
          // A request that is given up on is aborted, so its connection is not reused for a late answer.
          if (controller && !controller.aborted) controller.abort(err);
          reject(err);
        } else resolve(answer!);
      };
      const fail = (err: Error) => settle(err);
      const abandon = () => fail(started ? new Error("sender closed") : new NotStoredError(NOT_SENT, false));
      this.pending.add(abandon);
      // One timer for the whole request, queueing for a connection included: a request still waiting
      // when it fires is never sent.
      const timer = setTimeout(() => fail(new Error(`timeout: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      const deadline = performance.now() + this.timeoutMs;
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (c) => {
          controller = c;
          if (settled) c.abort(new Error("sender gave up on the request")); // close() while it was being sent
        },
        onResponseStart: (_c, statusCode, headers) => {
          status = statusCode;
          replayed = headers["idempotent-replayed"] === "true";
        },
        onResponseData: (_c, chunk) => void chunks.push(chunk),
        onResponseEnd: () => settle(undefined, { status, replayed, text: Buffer.concat(chunks).toString("utf8") }),
        // A refused connection (code ECONNREFUSED), a reset, or a connection lost mid-answer (the
        // request may have been stored).
        onResponseError: (_c, err) => settle(err),
      };
      const start = (): boolean => {
        if (settled || performance.now() >= deadline) return false; // given up on, or its timer is due
        started = true;
        target.dispatched++;
        target.pool.dispatch(
          {
            origin: target.url.origin,
            path: target.url.pathname,
            method: "POST",
            headers: {
              "content-type": "application/json",
              "idempotency-key": idempotencyKey,
              ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
            },
            body: payload,
          },
          handler,
        );
        return true;
      };
      if (target.dispatched < this.connections) start();
      else target.waiting.push(start);
    });
  }

  /** A request of `target` handed to the Pool has settled: its connection goes to the oldest request still waiting. */
  private dispatched(target: Target): void {
    target.dispatched--;
    while (target.dispatched < this.connections && !this.closed) {
      const start = target.waiting.shift();
      if (!start) return;
      start();
    }
  }
}

/**
 * Before a run through gateways: resolves when at least one of `urls` answers `GET /healthz` (any HTTP
 * status) within `timeoutMs`; else throws an EnvironmentError naming them and what the first said.
 * Without it, a mistyped --via costs the whole --retry-for, every order retried against nothing.
 */
export async function checkGatewaysReachable(urls: string[], timeoutMs = 2_000): Promise<void> {
  const failures = await Promise.all(urls.map((url) => healthz(url, timeoutMs)));
  if (failures.some((f) => f === undefined)) return;
  throw new EnvironmentError(`--via: no gateway answers at ${urls.join(", ")} (${failures[0]}): is \`orderq intake\` running there?`);
}

/** Undefined when `GET <url>/healthz` is answered (any status); else why not: the error's code, or its message. */
function healthz(url: string, timeoutMs: number): Promise<string | undefined> {
  const target = new URL("/healthz", url);
  const get = target.protocol === "https:" ? https.get : http.get;
  return new Promise((resolve) => {
    const req = get(target, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(undefined);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" })));
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? errorMessage(err)));
  });
}
