/**
 * Issue 14's bad inputs that need no server: each is one line naming what and where, with the
 * promised exit code (2 bad input, 3 environment), and no stack trace.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeFailure, InputError } from "../../src/core/base/errors.js";
import { parseProbability } from "../../src/cli/flags.js";
import { parseScenario } from "../../src/core/chaos/loader.js";
import { History } from "../../src/core/pipeline/history.js";
import { orderJsonSchema, parseOrder } from "../../src/core/pipeline/order.js";
import { serveMetrics } from "../../src/core/fleet/metrics.js";
import { assertPortFree } from "../../src/core/fleet/nats-server.js";
import { withUrlCredentials } from "../../src/core/nats/connection.js";
import { loadContext, selectedContext } from "../../src/core/nats/context.js";

const failure = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return describeFailure(err);
  }
  assert.fail("expected a failure");
};

const asyncFailure = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    return describeFailure(err);
  }
  assert.fail("expected a failure");
};

/** A loopback port held by a listening socket until `release()`. */
async function busyPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const address = srv.address();
  return { port: typeof address === "object" && address ? address.port : 0, release: () => new Promise((r) => srv.close(() => r())) };
}

describe("operator's bad inputs (issue 14)", () => {
  it("--poison-rate abc names the flag and the value (was: NaN is not a probability), exit 2", () => {
    assert.deepEqual(
      failure(() => parseProbability("abc", "--poison-rate")),
      {
        message: '--poison-rate: "abc" is not a probability between 0 and 1',
        exitCode: 2,
      },
    );
    assert.equal(parseProbability("0.25", "--fail-rate"), 0.25);
  });

  it("a scenario field of the wrong type names the field and the type expected (was: required), exit 2", () => {
    assert.deepEqual(
      failure(() => parseScenario("orders: abc\nrate: 10\n", "s.yaml")),
      { message: 's.yaml:1: orders: expected number, got string "abc"', exitCode: 2 },
    );
    assert.equal(
      failure(() => parseScenario("orders: 10\nrate: 10\nworkers:\n  processes: [1]\n", "s.yaml")).message,
      "s.yaml:4: workers.processes: expected number, got a list",
    );
    // Absent is still "required": the negative control of the change.
    assert.equal(failure(() => parseScenario("orders: 10\n", "s.yaml")).message, "s.yaml:1: rate: required");
  });

  it("an unwritable --history is one line before anything starts (was: a Node stack trace), exit 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-history-"));
    try {
      const f = failure(() => new History(join(dir, "missing", "h.jsonl")));
      assert.equal(f.exitCode, 2);
      assert.match(f.message, /^--history: cannot write .*missing\/h\.jsonl: ENOENT: no such file or directory/);
      assert.doesNotMatch(f.message, /\n|\s{4}at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a busy --metrics-port is one line and exit 3 (was: raw EADDRINUSE, exit 1)", async () => {
    const busy = await busyPort();
    try {
      const f = await asyncFailure(serveMetrics(busy.port, () => Promise.resolve({ contentType: "text/plain", body: "" })));
      assert.deepEqual(f, { message: `--metrics-port: port ${busy.port} is already in use on 127.0.0.1`, exitCode: 3 });
    } finally {
      await busy.release();
    }
  });

  it("serves metrics on loopback by default (was: every interface)", async () => {
    const server = await serveMetrics(0, () => Promise.resolve({ contentType: "text/plain", body: "" }));
    try {
      assert.equal((server.address() as { address: string }).address, "127.0.0.1");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("a taken server port is exit 3 naming the port and how to stop an orderq server there", async () => {
    const busy = await busyPort();
    try {
      const f = await asyncFailure(assertPortFree(busy.port));
      assert.equal(f.exitCode, 3);
      assert.match(f.message, new RegExp(`^port ${busy.port} is already in use .*orderq server stop --port ${busy.port}`));
    } finally {
      await busy.release();
    }
    await assertPortFree(busy.port); // free again: no false alarm
  });

  it("a server without JetStream is an environment problem, exit 3 (was: exit 1)", () => {
    const err = new Error("jetstream is not enabled");
    err.name = "JetStreamNotEnabled";
    const f = describeFailure(err);
    assert.equal(f.exitCode, 3);
    assert.match(f.message, /^JetStream is not enabled on this NATS server/);
    assert.ok(!(err instanceof InputError));
  });
});

describe("credentials in server URLs and natscli contexts (issue 14)", () => {
  it("moves user:password (or a token) out of the URL, decoded; credentials given apart win", () => {
    const o = withUrlCredentials({ server: "nats://ops:p%40ss%3Aw0rd@10.0.0.1:4222, nats://ops:p%40ss%3Aw0rd@10.0.0.2:4222" });
    assert.equal(o.server, "nats://10.0.0.1:4222,nats://10.0.0.2:4222");
    assert.equal(o.user, "ops");
    assert.equal(o.password, "p@ss:w0rd");
    assert.equal(withUrlCredentials({ server: "tls://s3cr3t@host:4222" }).token, "s3cr3t");
    const apart = withUrlCredentials({ server: "nats://a:b@host:4222", user: "flag-user", password: "flag-pass" });
    assert.deepEqual([apart.server, apart.user, apart.password], ["nats://host:4222", "flag-user", "flag-pass"]);
    assert.deepEqual(withUrlCredentials({ server: "nats://127.0.0.1:4222" }), { server: "nats://127.0.0.1:4222" });
  });

  it("reads a natscli context file; refuses a missing one or settings orderq cannot honour, exit 2", () => {
    const home = mkdtempSync(join(tmpdir(), "orderq-ctx-"));
    try {
      const env = { XDG_CONFIG_HOME: home };
      mkdirSync(join(home, "nats", "context"), { recursive: true });
      const write = (name: string, body: object) => writeFileSync(join(home, "nats", "context", `${name}.json`), JSON.stringify(body));
      write("prod", {
        description: "x",
        url: "nats://n1:4222",
        user: "u",
        password: "p",
        token: "",
        creds: "",
        nkey: "",
        cert: "",
        key: "",
        ca: "/ca.pem",
        nsc: "",
      });
      assert.deepEqual(loadContext("prod", env), { server: "nats://n1:4222", user: "u", password: "p", tlsCa: "/ca.pem" });
      assert.equal(selectedContext(env), undefined);
      writeFileSync(join(home, "nats", "context.txt"), "prod");
      assert.equal(selectedContext(env), "prod");
      write("domain", { url: "nats://n1:4222", jetstream_domain: "hub" });
      assert.deepEqual(
        failure(() => loadContext("domain", env)),
        {
          message: `--context domain: jetstream_domain is not supported by orderq (${join(home, "nats", "context", "domain.json")})`,
          exitCode: 2,
        },
      );
      assert.equal(failure(() => loadContext("absent", env)).exitCode, 2);
      assert.equal(failure(() => loadContext("../etc", env)).message, '--context: "../etc" is not a context name');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("the order format (issue 14)", () => {
  const order = { id: "o-1", source: "web", items: [{ sku: "a", qty: 1, price: 2, colour: "red" }], amount: 2, createdAt: "2026-11-30T10:00:00Z" };
  const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

  it("lets unknown fields through to the handler by default (was: every such order dead-lettered), and refuses them when strict", () => {
    const loose = parseOrder(encode({ ...order, customer: { name: "Ada" } }));
    assert.ok(loose.ok);
    assert.deepEqual((loose.order as Record<string, unknown>).customer, { name: "Ada" }, "kept as sent");
    const strict = parseOrder(encode({ ...order, customer: { name: "Ada" } }), true);
    assert.equal(strict.ok, false);
    if (!strict.ok) assert.match(strict.reason, /Unrecognized key: "(customer|colour)"/);
    // Known fields are checked the same either way: the negative control.
    assert.equal(parseOrder(encode({ ...order, amount: -1 })).ok, false);
  });

  it("publishes the format as JSON Schema, additional properties allowed unless strict", () => {
    const schema = orderJsonSchema() as { $schema: string; required: string[]; additionalProperties?: unknown };
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    assert.deepEqual([...schema.required].sort(), ["amount", "createdAt", "id", "items", "source"]);
    assert.notEqual(schema.additionalProperties, false);
    assert.equal((orderJsonSchema(true) as { additionalProperties?: unknown }).additionalProperties, false);
  });
});
