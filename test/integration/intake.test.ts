/**
 * `orderq intake` over real HTTP against a real nats-server: the idempotency answers, the status
 * lookup, the operator routes, bearer tokens, a broker that stops and comes back, and SIGTERM through
 * the real CLI.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectNats } from "../../src/core/nats/connection.js";
import { namesFor, orderSubject } from "../../src/core/nats/names.js";
import { DEFAULT_SETTINGS, ensureTopology, type TopologySettings } from "../../src/core/nats/topology.js";
import { Gateway, type GatewayOptions } from "../../src/core/intake/gateway.js";
import { Ledger } from "../../src/core/pipeline/ledger.js";
import { KeyStore } from "../../src/core/intake/key-store.js";
import { fingerprint } from "../../src/core/intake/idempotency.js";
import { json, runCli, startCli } from "../support/cli.js";
import { useServer } from "../support/server.js";
import { usePostgres } from "../support/postgres.js";
import { InboxStore } from "../../src/core/inbox/store.js";
import { DEFAULT_INBOX_TABLE, ensureInboxSchema } from "../../src/core/inbox/schema.js";
import { waitFor } from "../support/wait.js";

const names = namesFor({ stream: "INTAKE_T", consumer: "workers", dlqStream: "INTAKE_T_DLQ", ledgerBucket: "intake_t_ledger" });
/** A short duplicate window, so a test can outlive it. */
const DUP_WINDOW_MS = 1000;
const settings: TopologySettings = { ...DEFAULT_SETTINGS, names, dupWindowMs: DUP_WINDOW_MS };

function order(id: string, amount = 12.5) {
  return { id, source: "web", items: [{ sku: "mug-330", qty: 1, price: amount }], amount, createdAt: "2026-11-30T10:00:00.000Z" };
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function request(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text && /json/.test(res.headers.get("content-type") ?? "") ? JSON.parse(text) : text };
}

function post(base: string, body: unknown, extra: Record<string, string> = {}): Promise<Answer> {
  return request(`${base}/orders`, {
    method: "POST",
    headers: { "content-type": "application/json", ...extra },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("intake: the HTTP gateway", function () {
  let nc: NatsConnection;
  let gateway: Gateway;
  let base: string;
  // Defined before useServer()'s: mocha runs after hooks in the order they are defined, and the
  // gateway's connection must close before the server dies. A server going away under an open
  // connection lets the client's transport write to a socket the peer ended, and that error can
  // surface with no listener (ERR_STREAM_WRITE_AFTER_END: twice failed this hook in a fresh-clone .ci/run).
  after(async () => {
    await gateway?.close();
    await nc?.close();
  });
  const fx = useServer();
  const options = (extra: Partial<GatewayOptions> = {}): GatewayOptions => ({
    host: "127.0.0.1",
    port: 0,
    names,
    timeoutMs: 1000,
    retryAfterSeconds: 1,
    ...extra,
  });
  const messages = async () => (await (await jetstreamManager(fx.nc)).streams.info(names.stream)).state.messages;

  before(async function () {
    // The gateway's own connection, as the CLI has: it sees the server stop and come back.
    nc = await connectNats({ server: fx.server.url });
    await ensureTopology(nc, settings);
    gateway = await Gateway.start(nc, options());
    base = gateway.url;
  });

  it("answers 202 after the PubAck, with Location and the stream sequence, and publishes with Nats-Msg-Id = order id", async () => {
    const r = await post(base, order("ord-1"), { "Idempotency-Key": '"ord-1"' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.headers.get("location"), "/orders/ord-1");
    assert.deepEqual(r.body, { id: "ord-1", seq: 1, stream: names.stream });
    const msg = await (await jetstreamManager(fx.nc)).streams.getMessage(names.stream, { seq: 1 });
    assert.equal(msg?.header?.get("Nats-Msg-Id"), "ord-1");
    assert.equal(msg?.subject, orderSubject(names, "web"));
    assert.deepEqual(msg?.json(), order("ord-1"));
  });

  it("publishes once when requests with one key arrive together: the others get 409 or the stored answer", async () => {
    const before = await messages();
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(base, order("ord-race"))));
    const statuses = answers.map((a) => a.status);
    assert.ok(
      statuses.every((s) => s === 202 || s === 409),
      statuses.join(","),
    );
    const seqs = new Set(answers.filter((a) => a.status === 202).map((a) => a.body.seq));
    assert.equal(seqs.size, 1, `one sequence for every 202: ${[...seqs].join(",")}`);
    for (const a of answers.filter((x) => x.status === 409)) {
      assert.equal(a.body.type, "urn:orderq:problem:request-in-flight");
      assert.equal(a.headers.get("retry-after"), "1");
    }
    assert.equal((await messages()) - before, 1, "one message in the stream");
  });

  it("answers 409 while another gateway's claim on the key holds, and takes over a claim whose lease ran out", async () => {
    const open = (now: () => number) => KeyStore.open(fx.nc, names, { timeoutMs: 1000, leaseMs: 60_000, gateway: "other", now });
    // Another gateway claimed the key and is publishing (or died doing so just now).
    await (await open(Date.now)).claim("ord-claimed", fingerprint(order("ord-claimed")));
    const busy = await post(base, order("ord-claimed"));
    assert.equal(busy.status, 409);
    assert.equal(busy.body.type, "urn:orderq:problem:request-in-flight");
    assert.equal(busy.headers.get("retry-after"), "1");
    // A claim made an hour ago: its gateway is gone, and the retry publishes.
    await (await open(() => Date.now() - 3_600_000)).claim("ord-orphan", fingerprint(order("ord-orphan")));
    const taken = await post(base, order("ord-orphan"));
    assert.equal(taken.status, 202, JSON.stringify(taken.body));
    assert.equal((await post(base, order("ord-orphan"))).headers.get("idempotent-replayed"), "true");
  });

  it("refuses the same key with another payload (422), and a header that is not the order id (400)", async () => {
    assert.equal((await post(base, order("ord-2"))).status, 202);
    const reused = await post(base, order("ord-2", 99));
    assert.equal(reused.status, 422);
    assert.equal(reused.headers.get("content-type"), "application/problem+json; charset=utf-8");
    assert.equal(reused.body.type, "urn:orderq:problem:key-reused");
    const mismatch = await post(base, order("ord-3"), { "Idempotency-Key": "ord-other" });
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.body.type, "urn:orderq:problem:key-mismatch");
    const malformed = await post(base, order("ord-3"), { "Idempotency-Key": '"ord-3' });
    assert.equal(malformed.body.type, "urn:orderq:problem:invalid-idempotency-key");
  });

  it("gives the stored answer to a retry after the duplicate window, without a second message", async () => {
    const first = await post(base, order("ord-late"));
    assert.equal(first.status, 202);
    const before = await messages();
    await sleep(DUP_WINDOW_MS + 500);
    // Members in another order: the fingerprint is of the canonical JSON.
    const { createdAt, amount, items, source, id } = order("ord-late");
    const again = await post(base, { createdAt, amount, items, source, id }, { "Idempotency-Key": "ord-late" });
    assert.equal(again.status, 202);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.equal(await messages(), before, "no second message");
    // The stream itself has forgotten the id: the same publish made directly is stored again.
    const h = headers();
    h.set("Nats-Msg-Id", "ord-late");
    const direct = await jetstream(fx.nc).publish(orderSubject(names, "web"), JSON.stringify(order("ord-late")), { headers: h });
    assert.equal(direct.duplicate, false, "the duplicate window is over, so only the key store recognised the retry");
  });

  it("answers 400 with the field path, 413 for a large body and 415 for a body that is not JSON", async () => {
    const bad = order("ord-bad");
    bad.items[0].qty = 0;
    const invalid = await post(base, bad);
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.type, "urn:orderq:problem:invalid-order");
    assert.deepEqual(
      invalid.body.errors.map((e: { path: string; pointer: string }) => [e.path, e.pointer]),
      [["items.0.qty", "#/items/0/qty"]],
    );
    assert.match(invalid.body.detail, /^items\.0\.qty: /);
    // JSON that parses, but a string in it is not well-formed Unicode: no canonical form to fingerprint.
    // The problem names where: the field's path, as for any invalid field.
    for (const [id, json, path, pointer] of [
      ["ord-sur1", JSON.stringify(order("ord-sur1")).replace(/"sku":"[^"]*"/, '"sku":"a\\ud800"'), "items.0.sku", "#/items/0/sku"],
      ["ord-sur2", JSON.stringify({ ...order("ord-sur2"), note: "x" }).replace('"note":"x"', '"note":"\\udc00"'), "note", "#/note"],
      ["ord-sur3", JSON.stringify({ ...order("ord-sur3"), meta: { x: 1 } }).replace('"x":1', '"\\ud800k":1'), "meta.\ud800k", "#/meta/\ud800k"],
    ]) {
      const lone = await post(base, json);
      assert.deepEqual([lone.status, lone.body.type], [400, "urn:orderq:problem:invalid-order"], id);
      const detail = "a lone UTF-16 surrogate (not well-formed Unicode): it has no canonical JSON form (RFC 8785)";
      assert.equal(lone.body.detail, `order ${id}: ${path}: ${detail}`);
      assert.deepEqual(lone.body.errors, [{ pointer, path, detail }]);
    }
    // Bytes that are not UTF-8 (fastify would have replaced them with U+FFFD, and two such bodies
    // differing only there would have shared a fingerprint).
    const [head, tail] = JSON.stringify(order("ord-bytes")).split('"sku":"');
    const bytes = await request(`${base}/orders`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: Buffer.concat([Buffer.from(`${head}"sku":"`), Buffer.from([0xff, 0xfe]), Buffer.from(tail.replace(/^[^"]*/, ""))]),
    });
    assert.deepEqual([bytes.status, bytes.body.type, bytes.body.detail], [400, "urn:orderq:problem:invalid-json", "the body is not valid UTF-8"]);
    const broken = await post(base, '{"id": "ord-x",');
    assert.equal(broken.status, 400);
    assert.equal(broken.body.type, "urn:orderq:problem:invalid-json");
    assert.equal(broken.body.errors[0].path, "(root)");
    const large = await post(base, { ...order("ord-big"), note: "x".repeat(70_000) });
    assert.equal(large.status, 413);
    const text = await request(`${base}/orders`, { method: "POST", headers: { "content-type": "text/plain" }, body: "one mug please" });
    assert.equal(text.status, 415);
    assert.equal(text.body.type, "urn:orderq:problem:unsupported-media-type");
  });

  it("tells where an order is: accepted, committed, dead-lettered, or 404", async () => {
    assert.equal((await post(base, order("ord-s1"))).status, 202);
    assert.equal((await post(base, order("ord-s2"))).status, 202);
    const accepted = await request(`${base}/orders/ord-s1`);
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.state, "accepted");
    assert.equal(accepted.body.inStream, true);
    const ledger = await Ledger.open(fx.nc, names);
    const at = new Date().toISOString();
    await ledger.record("ord-s1", { result: "committed", worker: "w-1", attempt: 2, streamSeq: accepted.body.seq, at });
    await ledger.record("ord-s2", {
      result: "dead-lettered",
      worker: "w-2",
      attempt: 5,
      streamSeq: 9,
      at,
      reason: "non-retryable",
      error: "card declined",
    });
    await ledger.close();
    const committed = await request(`${base}/orders/ord-s1`);
    assert.deepEqual(committed.body, { id: "ord-s1", state: "committed", worker: "w-1", attempt: 2, at, seq: accepted.body.seq });
    const dead = await request(`${base}/orders/ord-s2`);
    assert.equal(dead.body.state, "dead-lettered");
    assert.equal(dead.body.reason, "non-retryable");
    assert.equal(dead.body.lastError, "card declined");
    assert.equal((await request(`${base}/orders/never-sent`)).status, 404);
    // A URL that cannot be decoded: a problem like every error (was: fastify's own JSON).
    const undecodable = await request(`${base}/orders/%zz`);
    assert.equal(undecodable.status, 400);
    assert.equal(undecodable.headers.get("content-type"), "application/problem+json; charset=utf-8");
    assert.equal(undecodable.body.type, "urn:orderq:problem:bad-request");
  });

  it("serves healthz, readyz, metrics and an OpenAPI 3.1 document", async () => {
    assert.equal((await request(`${base}/healthz`)).status, 200);
    assert.deepEqual((await request(`${base}/readyz`)).body, { status: "ready" });
    const metrics = (await request(`${base}/metrics`)).body as string;
    assert.match(metrics, /orderq_intake_requests_total\{route="\/orders",method="POST",status="202"\} \d+/);
    assert.match(metrics, /orderq_intake_replays_total [1-9]/);
    assert.match(metrics, /orderq_intake_conflicts_total\{status="422"\} 1/);
    assert.match(metrics, /orderq_intake_request_seconds_bucket/);
    const doc = (await request(`${base}/openapi.json`)).body;
    assert.equal(doc.openapi, "3.1.0");
    const post = doc.paths["/orders"].post;
    assert.deepEqual(Object.keys(post.responses).sort(), ["202", "400", "401", "409", "413", "415", "422", "503"]);
    const schema = post.requestBody.content["application/json"].schema;
    assert.deepEqual(schema.properties.source.enum, ["web", "mobile", "api"]);
    assert.ok(doc.paths["/orders/{id}"].get);
  });

  it("with bearer tokens, answers 401 without a valid one and never echoes a token", async () => {
    const secured = await Gateway.start(nc, options({ tokens: ["t0ken-alpha", "t0ken-beta"] }));
    try {
      const none = await post(secured.url, order("ord-auth"));
      assert.equal(none.status, 401);
      assert.equal(none.body.type, "urn:orderq:problem:unauthorized");
      assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
      const wrong = await post(secured.url, order("ord-auth"), { Authorization: "Bearer t0ken-gamma" });
      assert.equal(wrong.status, 401);
      assert.doesNotMatch(JSON.stringify(wrong.body), /t0ken/);
      assert.equal((await request(`${secured.url}/orders/ord-auth`)).status, 401);
      assert.equal((await post(secured.url, order("ord-auth"), { Authorization: "Bearer t0ken-beta" })).status, 202);
      // The scheme is case-insensitive (RFC 9110); the token is not.
      assert.equal((await request(`${secured.url}/orders/ord-auth`, { headers: { Authorization: "bearer t0ken-alpha" } })).status, 200);
      assert.equal((await request(`${secured.url}/orders/ord-auth`, { headers: { Authorization: "Bearer T0KEN-ALPHA" } })).status, 401);
      assert.equal((await request(`${secured.url}/healthz`)).status, 200, "probes need no token");
    } finally {
      await secured.close();
    }
  });

  it("takes the orders of produce --via, which records its history as it does straight to JetStream", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-via-"));
    const file = join(dir, "history.jsonl");
    const before = await messages();
    const r = await runCli([
      "produce",
      "--count",
      "30",
      "--via",
      base,
      "--id-prefix",
      "via",
      "--invalid-rate",
      "0.2",
      "--duplicate-rate",
      "0.3",
      "--seed",
      "7",
      "--history",
      file,
      "--json",
    ]);
    const stats = json(r);
    const history = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const ok = history.filter((h) => h.type === "ok");
    const failed = history.filter((h) => h.type === "fail");
    assert.equal(stats.failed, failed.length);
    assert.ok(failed.length > 0 && failed.every((h) => /^HTTP (400|413)/.test(h.error) && h.tries === 1), JSON.stringify(failed[0]));
    // Why, on stderr too: without --history a refused order said nothing but its count.
    assert.equal(stats.firstFailure, failed[0].error);
    assert.equal(r.stderr.trim(), `orderq: ${failed.length} order(s) not stored; the first: ${failed[0].error}`);
    assert.equal(stats.indeterminate, 0);
    assert.ok(stats.duplicates > 0, "re-sends got the stored answer");
    assert.equal((await messages()) - before, new Set(ok.map((h) => h.id)).size, "one message per accepted order");
  });

  it("refuses a --via URL with a password before sending anything, and never prints it; names a gateway that is not there", async () => {
    const r = await runCli(["produce", "--count", "1", "--via", "http://shop:s3cret-pw@127.0.0.1:1/"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), /^orderq: --via: a user or password in the URL is not used by the gateway/);
    assert.doesNotMatch(r.stderr + r.stdout, /s3cret-pw/);
    // No gateway there: one line and exit 3 at once, not every order retried for --retry-for.
    const none = await runCli(["produce", "--count", "1", "--via", "http://127.0.0.1:1"]);
    assert.equal(none.code, 3, none.stderr);
    assert.match(
      none.stderr.trim(),
      /^orderq: --via: no gateway answers at http:\/\/127\.0\.0\.1:1\/ \([^)]+\): is `orderq intake` running there\?$/,
    );
  });

  it("answers 503 with Retry-After while the server is down, then 202 to the retry with the same key", async function () {
    this.timeout(60_000);
    await fx.server.stop();
    try {
      const down = await post(base, order("ord-down"));
      assert.equal(down.status, 503);
      assert.equal(down.body.type, "urn:orderq:problem:unavailable");
      assert.equal(down.headers.get("retry-after"), "1");
      assert.match(down.body.detail, /; retrying with the same Idempotency-Key is safe$/);
      // A probe and a lookup are 503 too, without the advice meant for a submission.
      for (const path of ["/readyz", "/orders/ord-down"]) {
        const answer = await request(`${base}${path}`);
        assert.equal(answer.status, 503, path);
        assert.doesNotMatch(answer.body.detail, /Idempotency-Key/, path);
      }
    } finally {
      await fx.server.restart();
    }
    const back = await waitFor("a 202 once the server is back", async () => {
      const r = await post(base, order("ord-down"));
      return r.status === 202 && r;
    });
    assert.equal(back.body.id, "ord-down");
  });
});

describe("intake: the status lookup in inbox mode", function () {
  const fx = useServer();
  const db = usePostgres();

  it("reads the outcome from the inbox table, not the KV ledger", async () => {
    await ensureTopology(fx.nc, settings);
    await ensureInboxSchema(db.pool);
    const gateway = await Gateway.start(fx.nc, {
      host: "127.0.0.1",
      port: 0,
      names,
      timeoutMs: 1000,
      retryAfterSeconds: 1,
      inbox: { url: db.server.url, table: DEFAULT_INBOX_TABLE },
    });
    try {
      const accepted = await post(gateway.url, order("ord-inbox"));
      assert.equal(accepted.status, 202);
      assert.equal((await request(`${gateway.url}/orders/ord-inbox`)).body.state, "accepted");
      const inbox = await InboxStore.open({ url: db.server.url, poolSize: 1, maxBatch: 1 });
      await inbox.record("ord-inbox", {
        result: "dead-lettered",
        worker: "w-9",
        attempt: 3,
        streamSeq: accepted.body.seq,
        at: new Date().toISOString(),
        reason: "max-deliveries",
        error: "timeout",
      });
      await inbox.close();
      const dead = await request(`${gateway.url}/orders/ord-inbox`);
      assert.deepEqual(
        [dead.body.state, dead.body.reason, dead.body.lastError, dead.body.worker],
        ["dead-lettered", "max-deliveries", "timeout", "w-9"],
      );
    } finally {
      await gateway.close();
    }
  });
});

describe("intake: the command", function () {
  const fx = useServer();

  it("topology ensure creates the key store; bad input is refused before anything starts", async () => {
    const ensured = await runCli(["topology", "ensure", "--json", "--server", fx.server.url]);
    assert.equal(ensured.code, 0, ensured.stderr);
    const bucket = json(ensured).resources.find((r: { name: string }) => r.name === "orderq_intake");
    assert.deepEqual([bucket.kind, bucket.action, bucket.settings.max_age], ["kv", "created", "1d"]);
    const short = await runCli(["intake", "--intake-retention", "30s", "--server", fx.server.url]);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /--intake-retention: 30s is shorter than the duplicate window \(2m\)/);
    const help = await runCli(["intake", "--help"]);
    assert.match(help.stdout, /EXAMPLES\s+\$ orderq intake/);
    assert.match(help.stdout, /--json/);
  });

  it("on SIGTERM stops accepting, answers the request in flight and exits 0", async function () {
    this.timeout(60_000);
    const cli = startCli(["intake", "--port", "0", "--json", "--server", fx.server.url, "--timeout", "10s"]);
    let out = "";
    cli.child.stdout?.on("data", (d) => (out += d));
    const started = await waitFor("the start line", () => out.includes("\n") && out);
    const url: string = JSON.parse(started.split("\n")[0]).listening.url;
    assert.equal((await post(url, order("cli-1"))).status, 202);
    // The broker stops answering, so the next request is still in flight when SIGTERM arrives.
    await fx.server.pause();
    const inFlight = post(url, order("cli-2"));
    await sleep(300);
    cli.child.kill("SIGTERM");
    await sleep(300);
    fx.server.resume();
    const answer = await inFlight;
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const done = await cli.done;
    assert.equal(done.code, 0, done.stderr);
    await assert.rejects(fetch(`${url}/healthz`), "no longer listening");
  });

  it("on SIGTERM exits 0 even while the broker does not answer (its drain gives up after --timeout)", async function () {
    this.timeout(60_000);
    const cli = startCli(["intake", "--port", "0", "--json", "--server", fx.server.url, "--timeout", "2s"]);
    let out = "";
    cli.child.stdout?.on("data", (d) => (out += d));
    await waitFor("the start line", () => out.includes("\n") && out);
    await fx.server.pause();
    try {
      cli.child.kill("SIGTERM");
      // Before: the closing drain waited for the stopped server until the client gave up on it, minutes.
      const done = await cli.done;
      assert.equal(done.code, 0, done.stderr);
      assert.match(out, /"stopped"/);
    } finally {
      fx.server.resume();
    }
  });
});
