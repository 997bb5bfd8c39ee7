/**
 * `orderq produce --via http://host:port`: the producer's orders sent through an intake gateway
 * instead of straight to JetStream, so chaos runs and benches exercise the gateway. Each order is a
 * `POST /orders` with `Idempotency-Key` = its id; the producer retries a timed-out or refused request
 * with the same key, which the gateway answers idempotently. With several gateways (sharing one key
 * store) orders are spread over them round-robin, and a request one did not answer (connection
 * refused, reset, timed out) is sent at once to the next with the same key.
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
import { EnvironmentError, errorMessage } from "../base/errors.js";

/** Statuses after which a retry would be refused the same way: the order was not stored. */
const FINAL = new Set([400, 401, 403, 404, 413, 415, 422]);

/** The gateway's answer to one POST. */
interface Answer {
  status: number;
  replayed: boolean;
  text: string;
}

/** One gateway: its URL and its keep-alive connections. */
interface Target {
  url: URL;
  agent: http.Agent;
  request: typeof http.request;
}

export class HttpSender implements Sender {
  private readonly targets: Target[];
  private readonly pending = new Set<http.ClientRequest>();
  private closed = false;
  /** The gateway the next order starts with. */
  private next = 0;

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
    this.targets = list.map((base) => {
      const url = new URL("/orders", base);
      const secure = url.protocol === "https:";
      // scheduling "fifo": requests take connections in the order they were made, so none waits behind
      // later ones (the agent's default, lifo, favours the most recently used connection).
      const options = { keepAlive: true, maxSockets: connections, scheduling: "fifo" as const };
      return { url, agent: secure ? new https.Agent(options) : new http.Agent(options), request: secure ? https.request : http.request };
    });
  }

  /**
   * POSTs the payload with the Nats-Msg-Id of `headers` as its Idempotency-Key, to one gateway after
   * the other (each at most once, starting round-robin) until one answers. Resolves with the gateway's
   * answer as a PubAck (`duplicate`: a replayed answer). Throws NotStoredError when a gateway refused
   * the order or every gateway refused the connection (retryable unless the refusal is final), any
   * other Error when the order may have been stored (a timeout or a connection lost mid-request at
   * some gateway, a 409 or a 503).
   */
  async publish(_subject: string, payload: string, headers: MsgHdrs): Promise<PubAck> {
    const key = headers.get("Nats-Msg-Id");
    const idempotencyKey = `"${key.replace(/[\\"]/g, "\\$&")}"`;
    const start = this.next++ % this.targets.length;
    const unanswered: { url: URL; refused: boolean; error: string }[] = [];
    let answer: Answer | undefined;
    for (let i = 0; i < this.targets.length && !answer && !this.closed; i++) {
      const target = this.targets[(start + i) % this.targets.length];
      try {
        answer = await this.post(target, payload, idempotencyKey);
      } catch (err) {
        // Only a refused connection proves the gateway never saw the request.
        unanswered.push({ url: target.url, refused: (err as { code?: string }).code === "ECONNREFUSED", error: errorMessage(err) });
      }
    }
    if (!answer) {
      const detail = unanswered.map((u) => `${u.url}: ${u.error}`).join("; ");
      if (unanswered.length > 0 && unanswered.every((u) => u.refused)) throw new NotStoredError(`no gateway took the connection (${detail})`, true);
      throw new Error(`no answer from the gateway: ${detail || "sender closed"}`);
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
    for (const target of this.targets) target.agent.destroy();
  }

  private post(target: Target, payload: string, idempotencyKey: string): Promise<Answer> {
    if (this.closed) return Promise.reject(new Error("sender closed"));
    return new Promise<Answer>((resolve, reject) => {
      const body = Buffer.from(payload);
      const req = target.request(target.url, {
        method: "POST",
        agent: target.agent,
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
