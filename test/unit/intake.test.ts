/** The gateway's pure parts: the Idempotency-Key header, the payload fingerprint, problem field paths, tokens. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import canonicalize from "canonicalize";
import { serializerCompiler as zodSerializerCompiler, validatorCompiler as zodValidatorCompiler } from "fastify-type-provider-zod";
import { z } from "zod";
import { canonicalJson, fingerprint, NoCanonicalFormError, parseIdempotencyKey } from "../../src/core/intake/idempotency.js";
import { serializerCompiler, validatorCompiler } from "../../src/core/intake/compilers.js";
import { isPlainValidOrder, makeOrder, orderJson, orderSchema } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { fieldProblem } from "../../src/core/intake/problem.js";
import { tokensFrom } from "../../src/cli/intake-flags.js";
import { InputError } from "../../src/core/base/errors.js";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { headers } from "@nats-io/transport-node";
import { HttpSender } from "../../src/core/intake/http-sender.js";
import { NotStoredError } from "../../src/core/pipeline/producer.js";

describe("intake: Idempotency-Key", () => {
  it("accepts the draft's quoted string and a bare token", () => {
    assert.deepEqual(parseIdempotencyKey('"ord-1"'), { ok: true, key: "ord-1" });
    assert.deepEqual(parseIdempotencyKey(" ord-1 "), { ok: true, key: "ord-1" });
    assert.deepEqual(parseIdempotencyKey('"a \\"b\\" \\\\c"'), { ok: true, key: 'a "b" \\c' });
  });

  it("refuses what is neither, naming why", () => {
    for (const bad of ['"ord-1', '"', '""', "", "a b", 'a"b', '"a\\x"', '"a"b"', `"${"k".repeat(256)}"`, '"é"']) {
      const r = parseIdempotencyKey(bad);
      assert.equal(r.ok, false, bad);
    }
  });
});

describe("intake: fingerprint", () => {
  it("is the same for the same JSON in another member order, and differs for another value", () => {
    const a = fingerprint({ id: "x", items: [{ sku: "a", qty: 1 }], amount: 1 });
    assert.equal(a, fingerprint({ amount: 1, items: [{ qty: 1, sku: "a" }], id: "x" }));
    assert.notEqual(a, fingerprint({ id: "x", items: [{ sku: "a", qty: 2 }], amount: 1 }));
    assert.match(a, /^[0-9a-f]{64}$/);
  });

  it("writes a plain order (its fast path) exactly as canonicalize does, member order shuffled or not", () => {
    const rng = seededRng(12);
    const shuffled = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).reverse());
    let plain = 0;
    for (let i = 0; i < 300; i++) {
      const order = JSON.parse(orderJson(makeOrder(`o-${i}`, "web", rng, i % 7 === 0 ? "poison" : undefined), i % 3 ? 300 : 0)) as Record<
        string,
        unknown
      >;
      order.amount = [0, 1e21, 1e-7, 12.5, -0, 0.1 + 0.2, 5e-324][i % 7];
      (order.items as { sku: string }[])[0].sku = ["a\u2028b", 'q"\\', "é😀", "\u0001\n"][i % 4];
      const reordered = { ...shuffled(order), items: (order.items as Record<string, unknown>[]).map(shuffled) };
      for (const v of [order, reordered]) {
        if (isPlainValidOrder(v)) plain++;
        assert.equal(canonicalJson(v), canonicalize(v));
      }
    }
    assert.equal(plain, 600, "every generated order took the fast path");
    // Not a plain order (a field the schema does not name): canonicalize itself.
    const loose = { id: "x", customer: { b: 1, a: [2, 1] } };
    assert.equal(canonicalJson(loose), canonicalize(loose));
  });

  it("refuses a payload with no canonical form — a lone surrogate, plain order or not — with NoCanonicalFormError", () => {
    const plain = JSON.parse(orderJson(makeOrder("o-1", "web", seededRng(1)))) as { items: { sku: string }[] } & Record<string, unknown>;
    assert.equal(isPlainValidOrder(plain), true);
    assert.match(fingerprint({ ...plain, items: [{ ...plain.items[0], sku: "\ud83d\ude00" }] }), /^[0-9a-f]{64}$/, "a whole pair is fine");
    for (const bad of [
      { ...plain, items: [{ ...plain.items[0], sku: "a\ud800" }] },
      { ...plain, note: "\udc00" },
      { ...plain, amount: Number.NaN },
    ]) {
      assert.throws(
        () => fingerprint(bad),
        (err: unknown) => err instanceof NoCanonicalFormError && /no canonical JSON form \(RFC 8785\)/.test(err.message),
      );
    }
  });
});

describe("intake: the gateway's schema compilers", () => {
  const accepted = z.object({ id: z.string(), seq: z.number().int(), stream: z.string() });
  const headersSchema = z.looseObject({ "idempotency-key": z.string().optional() });
  const route = (schema: unknown) => ({ schema, method: "POST", url: "/orders", httpPart: "body", httpStatus: "202" }) as never;

  it("writes the 202 as the zod serializer does, and leaves a bad body to it", () => {
    const fast = serializerCompiler(accepted)(route(accepted));
    const zod = zodSerializerCompiler(route(accepted));
    for (const body of [
      { id: "o-1", seq: 7, stream: "ORDERS" },
      { id: 'q"\\é', seq: 2 ** 53 - 1, stream: "S" },
      { id: "x", seq: 1, stream: "S", extra: 1 },
    ]) {
      assert.equal(fast(body), zod(body));
    }
    assert.throws(() => fast({ id: "x", seq: 1.5, stream: "S" }));
    // Another schema: the zod serializer.
    const other = z.object({ status: z.literal("ok") });
    assert.throws(() => serializerCompiler(accepted)(route(other))({ status: "no" }));
  });

  it("accepts a plain order as it is and leaves the rest to zod, which names the field", () => {
    const validate = validatorCompiler({ headers: headersSchema })(route(orderSchema)) as (d: unknown) => { value?: unknown; error?: unknown };
    const zod = zodValidatorCompiler(route(orderSchema)) as (d: unknown) => { value?: unknown; error?: unknown };
    const rng = seededRng(3);
    for (let i = 0; i < 50; i++) {
      const order = JSON.parse(orderJson(makeOrder(`o-${i}`, "api", rng, i % 5 === 0 ? "poison" : undefined))) as Record<string, unknown>;
      // Members in another order: the value has the schema's order, as zod's has (the published JSON).
      const reversed = {
        ...Object.fromEntries(Object.entries(order).reverse()),
        items: (order.items as object[]).map((it) => Object.fromEntries(Object.entries(it).reverse())),
      };
      assert.ok(isPlainValidOrder(reversed));
      assert.equal(JSON.stringify(validate(reversed).value), JSON.stringify(zod(reversed).value));
      assert.equal(JSON.stringify(validate(order).value), JSON.stringify(order));
    }
    const order = JSON.parse(orderJson(makeOrder("o-1", "api", seededRng(3))));
    const bad = { ...order, items: [{ sku: "a", qty: 0, price: 1 }] };
    assert.deepEqual(validate(bad), zodValidatorCompiler(route(orderSchema))(bad));
    assert.ok(validate(bad).error);
    const loose = { ...order, customer: "c" };
    assert.deepEqual(validate(loose).value, loose);
  });

  it("checks POST /orders's headers for a string Idempotency-Key", () => {
    const validate = validatorCompiler({ headers: headersSchema })(route(headersSchema)) as (d: unknown) => { value?: unknown; error?: unknown };
    assert.ok(validate({ "idempotency-key": '"o-1"' }).value);
    assert.ok(validate({}).value);
    assert.ok(validate({ "idempotency-key": ["a", "b"] }).error);
  });
});

describe("intake: problem field paths", () => {
  it("gives a JSON pointer and a dotted path", () => {
    assert.deepEqual(fieldProblem(["items", 0, "qty"], "too small"), { pointer: "#/items/0/qty", path: "items.0.qty", detail: "too small" });
    assert.deepEqual(fieldProblem([], "not JSON"), { pointer: "#", path: "(root)", detail: "not JSON" });
    assert.equal(fieldProblem(["a/b", "c~d"], "x").pointer, "#/a~1b/c~0d");
  });
});

describe("intake: bearer tokens", () => {
  it("reads a tokens file (comments and blank lines skipped) and names a bad line without showing it", () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-tokens-"));
    const good = join(dir, "good");
    writeFileSync(good, "# shop\nt0ken-a\n\n  t0ken-b  \n");
    assert.deepEqual(tokensFrom({ "api-token": "t0ken-c", "api-tokens-file": good }), ["t0ken-c", "t0ken-a", "t0ken-b"]);
    const bad = join(dir, "bad");
    writeFileSync(bad, "t0ken-a\nsecret with spaces\n");
    assert.throws(
      () => tokensFrom({ "api-tokens-file": bad }),
      (err: Error) => err instanceof InputError && /line 2/.test(err.message) && !/secret/.test(err.message),
    );
    assert.deepEqual(tokensFrom({}), []);
  });
});

describe("intake: produce --via's HttpSender (against a plain HTTP server on loopback)", () => {
  let server: Server;
  let base: string;
  const seen: { key?: string; body: string }[] = [];
  const sockets = new Set<unknown>();
  /** TCP connections accepted, whether or not a request came on them. */
  let connections = 0;
  before(async () => {
    server = createServer((req, res) => {
      sockets.add(req.socket);
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        seen.push({ key: req.headers["idempotency-key"] as string | undefined, body });
        const id = (JSON.parse(body) as { id: string }).id;
        if (id === "slow") return; // never answered: the sender's timeout
        if (id === "bad") {
          res.writeHead(422, { "content-type": "application/problem+json" }).end(JSON.stringify({ detail: "key reused" }));
          return;
        }
        if (id === "busy") return void res.writeHead(503).end(JSON.stringify({ detail: "down" }));
        res.writeHead(202, { "idempotent-replayed": id === "again" ? "true" : "false" }).end(JSON.stringify({ id, seq: 7, stream: "ORDERS" }));
      });
    });
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const send = (sender: HttpSender, id: string) => {
    const h = headers();
    h.set("Nats-Msg-Id", id);
    return sender.publish("orders.web", JSON.stringify({ id }), h);
  };

  it("maps each answer: 202 (replayed or not), a final 4xx, a 503 and a timeout that may have stored it", async () => {
    const sender = new HttpSender(base, 300, undefined, 2);
    try {
      assert.deepEqual(await send(sender, "ord-1"), { stream: "ORDERS", seq: 7, duplicate: false });
      assert.deepEqual(await send(sender, "again"), { stream: "ORDERS", seq: 7, duplicate: true });
      assert.equal(seen[0].key, '"ord-1"', "the order id, as the draft's quoted string");
      await assert.rejects(
        send(sender, "bad"),
        (err: unknown) => err instanceof NotStoredError && !err.retryable && /422: key reused/.test(err.message),
      );
      await assert.rejects(send(sender, "busy"), (err: unknown) => !(err instanceof NotStoredError) && /HTTP 503: down/.test((err as Error).message));
      await assert.rejects(send(sender, "slow"), (err: unknown) => !(err instanceof NotStoredError) && /timeout/.test((err as Error).message));
      // Twenty requests at once over at most two keep-alive connections (plus the one the timeout cost).
      const before = sockets.size;
      await Promise.all(Array.from({ length: 20 }, (_, i) => send(sender, `many-${i}`)));
      assert.ok(sockets.size - before <= 2, `${sockets.size - before} new connections`);
    } finally {
      sender.close();
    }
  });

  it("never sends a request given up on while it waited for a connection, nor opens a connection for it", async () => {
    const sender = new HttpSender(base, 300, undefined, 2);
    try {
      const before = { connections, seen: seen.length };
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => send(sender, "slow")));
      assert.deepEqual(
        results.map((r) => r.status),
        Array(10).fill("rejected"),
      );
      // Long enough for a request handed over late to reach the server (undici aborts it only once it has a
      // connection, and its abort destroys that connection: a new one per request given up on).
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Two connections, and each at most once more: a request queued a millisecond after the one ahead of
      // it may be handed the freed connection just before its own timer fires (it is then cut off unsent).
      // Before the sender queued requests itself: a new connection for each of the ten.
      assert.equal(seen.length - before.seen, 2, "only the two with a connection were sent");
      assert.ok(connections - before.connections <= 4, `${connections - before.connections} connections for 10 requests over 2`);
    } finally {
      sender.close();
    }
  });

  it("close() fails every request not answered at once: the one sent may be stored, the queued ones were never sent, and none is sent after", async () => {
    const sender = new HttpSender(base, 30_000, undefined, 1);
    const before = seen.length;
    const sent = send(sender, "slow"); // holds the one connection: never answered
    const queued = [send(sender, "q-1"), send(sender, "q-2")];
    while (seen.length === before) await new Promise((resolve) => setTimeout(resolve, 10));
    sender.close();
    const [first, ...rest] = await Promise.allSettled([sent, ...queued]);
    assert.equal(first.status, "rejected");
    const maybe = first.reason as Error;
    assert.ok(!(maybe instanceof NotStoredError) && /sender closed/.test(maybe.message), maybe.message);
    for (const r of rest) {
      assert.equal(r.status, "rejected");
      const err = r.reason as Error;
      assert.ok(err instanceof NotStoredError && !err.retryable, err.message);
      assert.match(err.message, /sender closed before the request was sent/);
    }
    await assert.rejects(send(sender, "after"), (err: unknown) => err instanceof NotStoredError && !err.retryable);
    // The server has seen the one request that had a connection: its pool is gone, nothing else can come.
    assert.deepEqual(
      seen.slice(before).map((r) => (JSON.parse(r.body) as { id: string }).id),
      ["slow"],
    );
  });

  it("says a refused connection stored nothing (retryable)", async () => {
    const sender = new HttpSender("http://127.0.0.1:1", 1000);
    try {
      await assert.rejects(send(sender, "ord-2"), (err: unknown) => err instanceof NotStoredError && err.retryable);
    } finally {
      sender.close();
    }
  });
});
