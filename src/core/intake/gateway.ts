/**
 * `orderq intake`: the HTTP gateway through which web, mobile and API clients submit orders
 * (DESIGN.md, Intake). Built on fastify: JSON body parsing with a size limit, route schemas that both
 * validate (zod, the order schema the workers apply) and generate the OpenAPI 3.1 document, and a
 * close() that stops accepting and finishes the requests in flight.
 *
 * `POST /orders` answers 202 only after JetStream's PubAck (`Nats-Msg-Id` = order id). The key store
 * (key-store.ts) makes the answer idempotent past the duplicate window: the same key and payload get
 * the first answer again, another payload 422, a request still in flight 409.
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from "fastify";
import swagger from "@fastify/swagger";
import bearerAuth from "@fastify/bearer-auth";
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, type ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { EnvironmentError, errorMessage } from "../base/errors.js";
import { followLink } from "../nats/connection.js";
import { kvStreamName, orderSubject, type Names } from "../nats/names.js";
import { PubAckRequests, type PubAck } from "../nats/pub-acks.js";
import { Ledger } from "../pipeline/ledger.js";
import { MAX_ORDER_BYTES, ORDER_ID, orderSchema, type Order } from "../pipeline/order.js";
import type { OutcomeStore } from "../pipeline/outcome-store.js";
import { InboxStore } from "../inbox/store.js";
import { serializerCompiler, validatorCompiler } from "./compilers.js";
import { fingerprint, NoCanonicalFormError, parseIdempotencyKey } from "./idempotency.js";
import { KeyStore, type StoredAnswer } from "./key-store.js";
import { IntakeMetrics } from "./metrics.js";
import { OrderStatusReader } from "./order-status.js";
import { fieldProblem, problem, problemSchema, PROBLEM_CONTENT_TYPE, type Problem, type ProblemKind } from "./problem.js";

export interface GatewayOptions {
  /** Address and port to listen on; port 0 picks a free one (see Gateway.url). */
  host: string;
  port: number;
  names: Names;
  /** How long one JetStream request (a key-store write, the publish) may take before the answer is 503 (ms). */
  timeoutMs: number;
  /** Identifies this gateway in the key store's records; a random one by default. */
  gatewayId?: string;
  /** Bearer tokens, any of which lets a client in; none: no authentication. Never logged. */
  tokens?: string[];
  /** Inbox mode: `GET /orders/{id}` reads outcomes from this PostgreSQL inbox instead of the KV ledger. */
  inbox?: { url: string; table: string };
  /** Seconds a client is told to wait (Retry-After) after a 503 or a 409. */
  retryAfterSeconds: number;
  /** One line for each thing an operator should know (a key-store write that failed). */
  log?: (line: string) => void;
  /**
   * Negative control for chaos runs (`intake --unsafe`): no key store and a fresh Nats-Msg-Id per
   * request, so a retry whose first request was stored is stored again.
   */
  unsafe?: boolean;
}

/** The 202 body (and the body of every replay of it); compilers.ts writes it out by hand. */
const acceptedSchema = z
  .object({
    id: z.string(),
    seq: z.number().int().describe("Sequence of the order's message in the orders stream."),
    stream: z.string(),
  })
  .describe("Stored. Location: /orders/{id}. A replay of an earlier answer carries Idempotent-Replayed: true.");

/** POST /orders's headers; compilers.ts checks them without zod. */
const submitHeadersSchema = z.looseObject({
  "idempotency-key": z
    .string()
    .optional()
    .describe('The order id, as a quoted string ("ord-1", as the IETF draft says) or bare. Absent: the order id is the key.'),
});

const statusSchema = z
  .looseObject({
    id: z.string(),
    state: z.enum(["accepted", "committed", "dead-lettered"]),
    seq: z.number().int(),
    worker: z.string().optional(),
    attempt: z.number().int().optional(),
    at: z.string().optional(),
    reason: z.string().optional(),
    lastError: z.string().optional(),
    stream: z.string().optional(),
    inStream: z.boolean().optional(),
  })
  .describe(
    "accepted: stored, waiting for a worker or being processed; committed: processed once (worker, attempt, time); dead-lettered: parked in the DLQ (reason, last error).",
  );

/** A failure of JetStream (timeout, no connection, no stream): answered 503 with Retry-After. */
class UnavailableError extends Error {}

/** Refuses bytes that are not UTF-8 instead of replacing them. */
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

export class Gateway {
  readonly metrics = new IntakeMetrics();
  private connected = true;
  private closing?: Promise<void>;
  private stopping = false;

  private constructor(
    private readonly app: FastifyInstance,
    private readonly nc: NatsConnection,
    private readonly options: GatewayOptions,
    private readonly keys: KeyStore,
    private readonly ledger: OutcomeStore,
    private readonly publisher: PubAckRequests,
    private readonly jsm: JetStreamManager,
    private readonly status: OrderStatusReader,
  ) {}

  /**
   * Opens the key store and the ledger of record, then listens. Throws when the key-store bucket does
   * not exist (run `orderq topology ensure`), the inbox cannot be read, or the port is taken.
   */
  static async start(nc: NatsConnection, options: GatewayOptions): Promise<Gateway> {
    const gatewayId = options.gatewayId ?? randomUUID().slice(0, 8);
    // A claim outlives every step of its request (claim, publish, answer: each bounded by the timeout),
    // so only a claim whose gateway died or lost the broker is ever taken over.
    const keys = await KeyStore.open(nc, options.names, { timeoutMs: options.timeoutMs, leaseMs: 3 * options.timeoutMs + 1000, gateway: gatewayId });
    const ledger: OutcomeStore = options.inbox
      ? await InboxStore.open({ url: options.inbox.url, table: options.inbox.table, poolSize: 2, maxBatch: 1 })
      : await Ledger.open(nc, options.names);
    const status = await OrderStatusReader.open(nc, options.names, ledger, keys, options.timeoutMs);
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: options.timeoutMs });
    const app = Fastify({
      logger: false,
      bodyLimit: MAX_ORDER_BYTES,
      return503OnClosing: true,
      // A URL fastify cannot decode (`/orders/%zz`) is refused before routing, where setErrorHandler
      // does not reach: answered as a problem like every other error.
      frameworkErrors: (err, _request, reply) => {
        void sendProblem(reply, problem("bad-request", err.message));
      },
    });
    const gateway = new Gateway(app, nc, { ...options, gatewayId }, keys, ledger, new PubAckRequests(nc, options.timeoutMs), jsm, status);
    gateway.watchConnection();
    try {
      await gateway.build();
      await app.listen({ host: options.host, port: options.port });
    } catch (err) {
      await gateway.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new EnvironmentError(`--port: port ${options.port} is already in use on ${options.host}`);
      if (code === "EADDRNOTAVAIL" || code === "EACCES")
        throw new EnvironmentError(`--host/--port: cannot listen on ${options.host}:${options.port} (${code})`);
      throw err;
    }
    return gateway;
  }

  /** Where the gateway listens, e.g. http://127.0.0.1:8080. */
  get url(): string {
    const address = this.app.server.address();
    if (!address || typeof address === "string") return String(address);
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** The OpenAPI 3.1 document of the routes (also served at `GET /openapi.json`). */
  openapi(): unknown {
    return this.app.swagger();
  }

  /**
   * Stops accepting connections, answers every request in flight, then releases the key store's and
   * ledger's resources. The NATS connection is the caller's. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      await this.app.close();
      this.publisher.close();
      this.keys.close();
      await this.ledger.close();
    })();
    return this.closing;
  }

  /** Follows the connection, so requests get 503 at once while it is down, not after a timeout. */
  private watchConnection(): void {
    followLink(this.nc, (state) => (this.connected = state === "connected"));
  }

  private async build(): Promise<void> {
    const app = this.app;
    const o = this.options;
    // Orders are JSON: any other body is a 415 (fastify would otherwise parse text/plain as a string).
    app.removeContentTypeParser("text/plain");
    // JSON is UTF-8 (RFC 8259, 8.1). Fastify's own parser decodes bytes that are not with replacement
    // characters, so two bodies differing only there would read as one order, one fingerprint: the
    // second answered as a replay of the first instead of 422. Bytes that do not decode are a 400.
    const parseJson = app.getDefaultJsonParser("error", "error");
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
      let text: string;
      try {
        text = STRICT_UTF8.decode(body as Buffer);
      } catch {
        done(new SyntaxError("the body is not valid UTF-8"), undefined);
        return;
      }
      void parseJson(request, text, done);
    });
    app.setValidatorCompiler(validatorCompiler({ headers: submitHeadersSchema }));
    app.setSerializerCompiler(serializerCompiler(acceptedSchema));
    app.setErrorHandler((err: FastifyError, _request, reply) => this.onError(err, reply));
    app.setNotFoundHandler((request, reply) => sendProblem(reply, problem("not-found", `no route ${request.method} ${request.url.split("?")[0]}`)));
    // An answer given while stopping closes its connection: the server closes idle keep-alive
    // connections when it stops, but one that becomes idle later would hold close() until it times out.
    app.addHook("onSend", (_request, reply, payload, done) => {
      if (this.stopping) reply.header("connection", "close");
      done(null, payload);
    });
    app.addHook("onResponse", (request, reply, done) => {
      this.metrics.answered(request.routeOptions.url ?? "unmatched", request.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
    const secured = (o.tokens?.length ?? 0) > 0;
    await app.register(swagger, {
      openapi: {
        openapi: "3.1.0",
        info: {
          title: "orderq intake",
          version: "1",
          description:
            "Submit orders idempotently: the Idempotency-Key header (or, without it, the order id) makes a retried POST safe. " +
            "202 means JetStream stored the order; GET /orders/{id} tells what became of it.",
        },
        components: secured ? { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } } : {},
      },
      transform: jsonSchemaTransform,
    });

    app.get("/healthz", { schema: { summary: "The process is alive.", response: { 200: z.object({ status: z.literal("ok") }) } } }, async () => ({
      status: "ok" as const,
    }));
    app.withTypeProvider<ZodTypeProvider>().get(
      "/readyz",
      {
        schema: {
          summary: "JetStream answers and the orders stream, the ledger and the key store exist.",
          response: { 200: z.object({ status: z.literal("ready") }), 503: problemSchema },
        },
      },
      async (_request, reply) => {
        const n = o.names;
        try {
          await Promise.all([n.stream, kvStreamName(n.ledgerBucket), kvStreamName(n.intakeBucket)].map((s) => this.jsm.streams.info(s)));
        } catch (err) {
          return this.unavailable(reply, `not ready: ${errorMessage(err)}`, false);
        }
        return { status: "ready" as const };
      },
    );
    app.get("/metrics", { schema: { summary: "Prometheus metrics of this gateway." } }, async (_request, reply) => {
      reply.header("content-type", this.metrics.registry.contentType);
      return this.metrics.registry.metrics();
    });
    app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

    await app.register(async (orders) => {
      if (secured) {
        // rfc6749: the scheme's name matched in any case ("bearer", "BEARER"), as HTTP auth schemes are
        // case-insensitive (RFC 9110, 11.1); rfc6750, the plugin's default, takes only "Bearer".
        await orders.register(bearerAuth, { keys: new Set(o.tokens), addHook: false, specCompliance: "rfc6749" });
        orders.addHook("onRequest", (request, reply, done) => orders.verifyBearerAuth!(request, reply, done));
      }
      const security = secured ? [{ bearer: [] }] : undefined;
      const typed = orders.withTypeProvider<ZodTypeProvider>();
      typed.post(
        "/orders",
        {
          schema: {
            summary: "Submit an order. 202 once JetStream stored it; a retry with the same key and payload gets the same answer.",
            security,
            headers: submitHeadersSchema,
            body: orderSchema,
            response: {
              202: acceptedSchema,
              400: problemSchema,
              401: problemSchema,
              409: problemSchema,
              413: problemSchema,
              415: problemSchema,
              422: problemSchema,
              503: problemSchema,
            },
          },
        },
        async (request, reply) => this.submit(request.body, request.headers["idempotency-key"], reply),
      );
      typed.get(
        "/orders/:id",
        {
          schema: {
            summary: "Where an order is: accepted, committed or dead-lettered.",
            security,
            params: z.object({ id: z.string() }),
            response: { 200: statusSchema, 401: problemSchema, 404: problemSchema, 503: problemSchema },
          },
        },
        async (request, reply) => {
          const { id } = request.params;
          if (!ORDER_ID.test(id)) return sendProblem(reply, problem("not-found", `"${id}" is not an order id`));
          let found;
          try {
            found = await this.status.read(id);
          } catch (err) {
            return this.unavailable(reply, errorMessage(err), false);
          }
          if (!found) return sendProblem(reply, problem("not-found", `no order ${id} is known (or its key has expired)`));
          return found;
        },
      );
    });
  }

  /** POST /orders after validation. */
  private async submit(order: Order, keyHeader: string | string[] | undefined, reply: FastifyReply): Promise<FastifyReply> {
    if (keyHeader !== undefined) {
      const parsed = parseIdempotencyKey(Array.isArray(keyHeader) ? keyHeader.join(",") : keyHeader);
      if (!parsed.ok) return sendProblem(reply, problem("invalid-idempotency-key", parsed.reason));
      if (parsed.key !== order.id) {
        return sendProblem(
          reply,
          problem("key-mismatch", `Idempotency-Key is "${parsed.key}" but the order id is "${order.id}": the key must be the order id`),
        );
      }
    }
    if (!this.connected) return this.unavailable(reply, "no connection to NATS");
    if (this.options.unsafe) return this.submitUnsafely(order, reply);
    let print: string;
    try {
      print = fingerprint(order);
    } catch (err) {
      if (err instanceof NoCanonicalFormError) {
        const errors = err.path && [fieldProblem(err.path, err.detail)];
        return sendProblem(reply, problem("invalid-order", `order ${order.id}: ${err.message}`, errors));
      }
      throw err;
    }
    const claim = await this.jetstream(() => this.keys.claim(order.id, print));
    if (claim instanceof UnavailableError) return this.unavailable(reply, claim.message);
    switch (claim.kind) {
      case "replay":
        this.metrics.replays.inc();
        reply.header("idempotent-replayed", "true");
        return accepted(reply, claim.answer);
      case "in-flight":
        this.metrics.conflicts.inc({ status: "409" });
        reply.header("retry-after", String(this.options.retryAfterSeconds));
        return sendProblem(reply, problem("request-in-flight", `a request for order ${order.id} is being published; retry after it is answered`));
      case "mismatch":
        this.metrics.conflicts.inc({ status: "422" });
        return sendProblem(
          reply,
          problem("key-reused", `order ${order.id} was submitted before with another payload; use a new order id for a new order`),
        );
    }
    const msgId = headers();
    msgId.set("Nats-Msg-Id", order.id);
    const ack = await this.jetstream<PubAck>(() =>
      this.publisher.publish(orderSubject(this.options.names, order.source), JSON.stringify(order), msgId),
    );
    if (ack instanceof UnavailableError) {
      this.metrics.publishes.inc({ result: "failed" });
      // The publish may have been stored all the same: the retry, with the same message id, is then
      // absorbed by the duplicate window (or, after it, by the ledger). Releasing the claim only lets
      // that retry come in before the lease ends.
      this.keys
        .release(order.id, claim.revision)
        .catch((err: unknown) => this.log(`could not release the claim on ${order.id}: ${errorMessage(err)}`));
      return this.unavailable(reply, ack.message);
    }
    this.metrics.publishes.inc({ result: ack.duplicate ? "duplicate" : "stored" });
    const answer: StoredAnswer = { status: 202, body: { id: order.id, seq: ack.seq, stream: ack.stream } };
    // The order is stored whatever happens to this write: a retry after a failed one finds the claim,
    // takes it over once the lease ends, and gets the same sequence from the duplicate window.
    await this.keys
      .complete(order.id, claim.revision, print, answer)
      .catch((err: unknown) => this.log(`could not store the answer for ${order.id}: ${errorMessage(err)}`));
    return accepted(reply, answer);
  }

  /** The negative control's POST /orders: publish under a new message id each time, remember nothing. */
  private async submitUnsafely(order: Order, reply: FastifyReply): Promise<FastifyReply> {
    const msgId = headers();
    msgId.set("Nats-Msg-Id", randomUUID());
    const ack = await this.jetstream<PubAck>(() =>
      this.publisher.publish(orderSubject(this.options.names, order.source), JSON.stringify(order), msgId),
    );
    if (ack instanceof UnavailableError) return this.unavailable(reply, ack.message);
    return accepted(reply, { status: 202, body: { id: order.id, seq: ack.seq, stream: ack.stream } });
  }

  /** Runs a JetStream call; its failure becomes an UnavailableError value (not thrown). */
  private async jetstream<T>(call: () => Promise<T>): Promise<T | UnavailableError> {
    try {
      return await call();
    } catch (err) {
      return new UnavailableError(`JetStream: ${errorMessage(err)}`);
    }
  }

  /** 503 with Retry-After; `submitted`: the answer to a POST, whose detail says a retry is safe. */
  private unavailable(reply: FastifyReply, detail: string, submitted = true): FastifyReply {
    reply.header("retry-after", String(this.options.retryAfterSeconds));
    return sendProblem(reply, problem("unavailable", submitted ? `${detail}; retrying with the same Idempotency-Key is safe` : detail));
  }

  private onError(err: FastifyError, reply: FastifyReply): FastifyReply {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const errors = err.validation.map((v) => fieldProblem(v.instancePath.split("/").slice(1).filter(Boolean), v.message ?? "invalid"));
      if (err.validationContext === "body") {
        const first = errors[0];
        return sendProblem(reply, problem("invalid-order", `${first.path}: ${first.detail}`, errors));
      }
      return sendProblem(
        reply,
        problem("bad-request", `${err.validationContext ?? "request"}: ${errors.map((e) => `${e.path}: ${e.detail}`).join("; ")}`),
      );
    }
    const byCode: Record<string, ProblemKind> = {
      FST_ERR_CTP_BODY_TOO_LARGE: "payload-too-large",
      FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported-media-type",
      FST_ERR_CTP_INVALID_CONTENT_LENGTH: "bad-request",
      FST_ERR_CTP_EMPTY_JSON_BODY: "invalid-json",
      FST_ERR_CTP_INVALID_JSON_BODY: "invalid-json",
      FST_BEARER_AUTH_MISSING_AUTHORIZATION_HEADER: "unauthorized",
      FST_BEARER_AUTH_INVALID_AUTHORIZATION_HEADER: "unauthorized",
    };
    const kind = byCode[err.code] ?? (err instanceof SyntaxError ? "invalid-json" : undefined);
    if (kind === "unauthorized") {
      reply.header("www-authenticate", 'Bearer realm="orderq"');
      return sendProblem(reply, problem(kind, "send Authorization: Bearer <token> with a token this gateway knows"));
    }
    if (kind === "payload-too-large") return sendProblem(reply, problem(kind, `an order is at most ${MAX_ORDER_BYTES} bytes`));
    if (kind === "unsupported-media-type") return sendProblem(reply, problem(kind, "send the order as JSON with Content-Type: application/json"));
    if (kind === "invalid-json") return sendProblem(reply, problem(kind, err.message, [fieldProblem([], err.message)]));
    if (kind) return sendProblem(reply, problem(kind, err.message));
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendProblem(reply, { ...problem("bad-request", err.message), status: err.statusCode });
    }
    this.log(`internal error: ${errorMessage(err)}`);
    return sendProblem(reply, problem("internal", "the gateway failed; the error is in its log"));
  }

  private log(line: string): void {
    this.options.log?.(line);
  }
}

function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).header("content-type", PROBLEM_CONTENT_TYPE).send(p);
}

function accepted(reply: FastifyReply, answer: StoredAnswer): FastifyReply {
  return reply
    .code(answer.status)
    .header("location", `/orders/${encodeURIComponent(answer.body.id)}`)
    .send(answer.body);
}
