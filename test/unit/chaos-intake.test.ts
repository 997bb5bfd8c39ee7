/**
 * Intake chaos without servers: scenario files with `intake` and kill-gateway, the nemesis's
 * kill-gateway against fake gateways, and the HTTP client's failover against local HTTP servers.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { headers } from "@nats-io/transport-node";
import { InputError } from "../../src/core/base/errors.js";
import { loadScenarioFile } from "../../src/core/chaos/loader.js";
import { Nemesis, type NemesisTargets } from "../../src/core/chaos/nemesis.js";
import type { FaultSpec } from "../../src/core/chaos/scenario.js";
import { freePort } from "../../src/core/fleet/nats-server.js";
import { HttpSender } from "../../src/core/intake/http-sender.js";
import { NotStoredError } from "../../src/core/pipeline/producer.js";

const KILL = "faults:\n  - kind: kill-gateway\n    at: 1s\n    duration: 500ms\n";

describe("chaos scenario files: intake mode", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "orderq-intake-scenarios-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function load(name: string, text: string) {
    const file = join(dir, name);
    writeFileSync(file, text);
    return loadScenarioFile(file);
  }

  function refusal(name: string, text: string): string {
    try {
      load(name, text);
    } catch (err) {
      assert.ok(err instanceof InputError, String(err));
      return err.message;
    }
    assert.fail(`${name} was accepted`);
  }

  it("reads intake with its defaults (2 gateways, 1 s) and allows kill-gateway there", () => {
    const s = load("ok.yaml", `orders: 10\nrate: 5\nintake: {}\n${KILL}`);
    assert.deepEqual(s.intake, { gateways: 2, timeoutMs: 1000 });
    assert.equal(s.faults[0].kind, "kill-gateway");
  });

  it("refuses kill-gateway without intake, and intake with inbox, naming the field", () => {
    assert.match(
      refusal("no-intake.yaml", `orders: 10\nrate: 5\n${KILL}`),
      /faults\[0\]\.kind: kill-gateway kills an intake gateway: the scenario needs `intake`/,
    );
    assert.match(refusal("both.yaml", "orders: 10\nrate: 5\nintake: {}\ninbox: {}\n"), /intake: intake and inbox cannot be combined/);
    assert.match(refusal("many.yaml", "orders: 10\nrate: 5\nintake: { gateways: 9 }\n"), /intake\.gateways: at most 8/);
  });

  it("ships intake-crash: two gateways, the slowdown before the kill", () => {
    const s = loadScenarioFile(new URL("../../scenarios/intake-crash.yaml", import.meta.url).pathname);
    assert.equal(s.intake?.gateways, 2);
    assert.deepEqual(
      s.faults.map((f) => [f.kind, f.target]),
      [
        ["slow-network", "producers"],
        ["kill-gateway", undefined],
      ],
    );
    // The control's duplicates need the slowed answer to come after the client's timeout.
    assert.ok(s.faults[0].delayMs > s.producer.publishTimeoutMs);
  });
});

class FakeGateways {
  readonly events: string[] = [];
  private up = new Set(["g1", "g2"]);
  ids(): string[] {
    return [...this.up];
  }
  async kill(id: string): Promise<boolean> {
    this.events.push(`kill ${id}`);
    this.up.delete(id);
    return true;
  }
  async restart(id: string): Promise<void> {
    this.events.push(`restart ${id}`);
    this.up.add(id);
  }
}

describe("nemesis: kill-gateway", () => {
  const spec = (over: Partial<FaultSpec>): FaultSpec => ({ kind: "kill-gateway", of: [], jitterMs: 0, durationMs: 30, delayMs: 0, ...over });
  const targets = (gateways?: FakeGateways) =>
    ({ workers: { ids: () => [] }, servers: [], leader: async () => undefined, paths: {}, gateways }) as unknown as NemesisTargets;

  it("kills the named gateway, restarts it after the duration, one gateway down at a time", async () => {
    const gateways = new FakeGateways();
    const n = new Nemesis([spec({ atMs: 0, target: "g2" }), spec({ atMs: 0, target: "g1" })], targets(gateways), 1);
    n.start(Date.now());
    await n.wait();
    assert.deepEqual(gateways.events, ["kill g2", "restart g2", "kill g1", "restart g1"]);
    assert.deepEqual(
      n.windows.map((w) => [w.target, w.observed]),
      [
        ["g2", true],
        ["g1", true],
      ],
    );
  });

  it("is a window not observed when the run has no gateways", async () => {
    const n = new Nemesis([spec({ atMs: 0 })], targets(), 1);
    n.start(Date.now());
    await n.wait();
    assert.deepEqual(
      n.windows.map((w) => [w.observed, w.detail]),
      [[false, "no intake gateways in this run"]],
    );
  });
});

describe("HttpSender: several gateways", () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  /** A gateway stand-in: answers 202 with `seq`, or never answers (`hang`). Returns its URL and the keys it saw. */
  async function gateway(seq: number | "hang"): Promise<{ url: string; keys: string[] }> {
    const keys: string[] = [];
    const server = createServer((req, res) => {
      keys.push(String(req.headers["idempotency-key"]));
      req.resume();
      if (seq === "hang") return;
      res.writeHead(202, { "content-type": "application/json" }).end(JSON.stringify({ id: "x", seq, stream: "ORDERS" }));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, keys };
  }

  const msgId = (id: string) => {
    const h = headers();
    h.set("Nats-Msg-Id", id);
    return h;
  };

  it("sends a refused request on to the next gateway at once, with the same key", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const up = await gateway(7);
    const sender = new HttpSender([down, up.url], 2000);
    const ack = await sender.publish("orders.web", "{}", msgId("ord-1"));
    assert.deepEqual(ack, { stream: "ORDERS", seq: 7, duplicate: false });
    assert.deepEqual(up.keys, ['"ord-1"']);
    sender.close();
  });

  it("spreads orders over the gateways, round-robin", async () => {
    const [a, b] = [await gateway(1), await gateway(2)];
    const sender = new HttpSender([a.url, b.url], 2000);
    const seqs = [];
    for (const id of ["o1", "o2", "o3", "o4"]) seqs.push((await sender.publish("orders.web", "{}", msgId(id))).seq);
    assert.deepEqual(seqs, [1, 2, 1, 2]);
    sender.close();
  });

  it("every gateway refused: surely not stored (retryable); a timeout anywhere: maybe stored", async () => {
    const [down1, down2] = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
    const refused = new HttpSender([down1, down2], 500);
    await assert.rejects(refused.publish("orders.web", "{}", msgId("o1")), (err) => err instanceof NotStoredError && err.retryable);
    refused.close();
    const slow = await gateway("hang");
    const mixed = new HttpSender([slow.url, down1], 200);
    await assert.rejects(
      mixed.publish("orders.web", "{}", msgId("o2")),
      (err) => !(err instanceof NotStoredError) && /no answer from the gateway/.test(String(err)),
    );
    assert.deepEqual(slow.keys, ['"o2"']);
    mixed.close();
  });
});
