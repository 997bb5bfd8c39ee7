/** `orderq status`: missing resources named, and the DLQ counted by reason without reading its entries. */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { encodeDlqHeaders, type DlqEntry, type DlqReason } from "../../src/core/pipeline/dlq-entry.js";
import { countDlq, scanDlq } from "../../src/core/ops/dlq-admin.js";
import { DEFAULT_NAMES, dlqSubject } from "../../src/core/nats/names.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { runCli } from "../support/cli.js";
import { useServer } from "../support/server.js";

const names = DEFAULT_NAMES;

function entry(n: number, reason: DlqReason): DlqEntry {
  const at = new Date().toISOString();
  return {
    reason,
    lastError: "boom",
    orderId: `t-${n}`,
    source: "web",
    originalStream: names.stream,
    originalSubject: "orders.web",
    originalSeq: n,
    originalHeaders: { "Nats-Msg-Id": [`t-${n}`] },
    consumer: names.consumer,
    deliveries: 1,
    attempts: [],
    deadLetteredAt: at,
  };
}

describe("status and the DLQ counts", function () {
  const fx = useServer();
  let n = 0;

  const add = async (reason: DlqReason) => {
    n++;
    await jetstream(fx.nc).publish(dlqSubject(names, "web", reason), "{}", { headers: encodeDlqHeaders(entry(n, reason), `tally-${n}`) });
  };

  it("status names the missing stream on a server without orderq's topology (exit 3)", async () => {
    const out = await runCli(["status", "--server", fx.server.url]);
    assert.equal(out.code, 3);
    assert.match(out.stderr, /^orderq: stream ORDERS not found: run `orderq topology ensure`/);
  });

  it("status names a missing consumer on a stream that exists (exit 3)", async () => {
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    const jsm = await jetstreamManager(fx.nc);
    await jsm.consumers.delete(names.stream, names.consumer);
    try {
      const out = await runCli(["status", "--server", fx.server.url]);
      assert.equal(out.code, 3);
      assert.match(out.stderr, /^orderq: consumer workers on ORDERS not found: run `orderq topology ensure`/);
    } finally {
      await ensureTopology(fx.nc, DEFAULT_SETTINGS); // the next test expects the whole topology
    }
  });

  it("counts the DLQ by reason from its subjects without reading an entry; reads only entries of the older subject layout", async () => {
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    const jsm = await jetstreamManager(fx.nc);
    const readers = async () => (await jsm.consumers.list(names.dlqStream).next()).length;
    let c = await countDlq(fx.nc, names);
    assert.deepEqual(
      [c.total, c.byReason, c.foreign],
      [0, { "invalid-payload": 0, "non-retryable": 0, "max-deliveries": 0, "crashed-worker": 0 }, 0],
    );

    await add("invalid-payload");
    await add("non-retryable");
    await add("max-deliveries");
    await add("max-deliveries");
    await jetstream(fx.nc).publish("dlq.orders.web.max-deliveries.extra", "by hand");
    c = await countDlq(fx.nc, names);
    assert.deepEqual(
      [c.total, c.byReason, c.foreign],
      [4, { "invalid-payload": 1, "non-retryable": 1, "max-deliveries": 2, "crashed-worker": 0 }, 1],
    );
    assert.deepEqual(await countDlq(fx.nc, names, { reason: "max-deliveries" }), {
      total: 2,
      byReason: { "invalid-payload": 0, "non-retryable": 0, "max-deliveries": 2, "crashed-worker": 0 },
      foreign: 0,
    });
    assert.equal(await readers(), 0, "nothing was read: no consumer on the DLQ");
    // Negative control: a scan does leave its (ordered, ephemeral) consumer behind, so the probe above can see a read.
    await scanDlq(fx.nc, names);
    const afterScan = await readers();
    assert.ok(afterScan > 0);

    // An entry of an older orderq, on `dlq.orders.<source>`: its reason is read from its headers.
    await jetstream(fx.nc).publish(dlqSubject(names, "web"), "{}", { headers: encodeDlqHeaders(entry(100, "non-retryable"), "legacy-100") });
    await jetstream(fx.nc).publish(dlqSubject(names, "web"), "by hand, old layout");
    c = await countDlq(fx.nc, names);
    assert.deepEqual(
      [c.total, c.byReason, c.foreign],
      [5, { "invalid-payload": 1, "non-retryable": 2, "max-deliveries": 2, "crashed-worker": 0 }, 2],
    );
    const s = await runCli(["status", "--json", "--server", fx.server.url]);
    assert.equal(s.code, 0, s.stderr);
    const dlq = JSON.parse(s.stdout).dlq;
    assert.deepEqual(
      [dlq.depth, dlq.byReason, dlq.foreign],
      [7, { "invalid-payload": 1, "non-retryable": 2, "max-deliveries": 2, "crashed-worker": 0 }, 2],
    );
  });

  it("widens the DLQ stream of an older orderq to the new subjects, keeping its entries", async () => {
    const jsm = await jetstreamManager(fx.nc);
    await jsm.streams.delete(names.dlqStream);
    await jsm.streams.add({ name: names.dlqStream, subjects: ["dlq.orders.*"] });
    await jetstream(fx.nc).publish(dlqSubject(names, "api"), "{}", { headers: encodeDlqHeaders(entry(200, "max-deliveries"), "old-200") });
    await ensureTopology(fx.nc, DEFAULT_SETTINGS); // as `orderq work` and `produce` do: no verify
    assert.deepEqual((await jsm.streams.info(names.dlqStream)).config.subjects, ["dlq.orders.>"]);
    await add("non-retryable"); // a worker of this orderq can dead-letter into it now
    const c = await countDlq(fx.nc, names);
    assert.deepEqual([c.total, c.byReason], [2, { "invalid-payload": 0, "non-retryable": 1, "max-deliveries": 1, "crashed-worker": 0 }]);
  });
});
