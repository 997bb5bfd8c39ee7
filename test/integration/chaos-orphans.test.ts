/** The orphan sweep, on the state the chaos runs found: orders left in ORDERS that nothing will deliver. */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { AttemptLog } from "../../src/core/pipeline/attempts.js";
import { listDlq } from "../../src/core/ops/dlq-admin.js";
import { Ledger } from "../../src/core/pipeline/ledger.js";
import { makeOrder } from "../../src/core/pipeline/order.js";
import { sweepOrphans } from "../../src/core/pipeline/dlq-mover.js";
import { seededRng } from "../../src/core/base/random.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

describe("orphan sweep", function () {
  this.timeout(60_000);
  const fx = useServer();

  it("dead-letters an order whose MAX_DELIVERIES advisory was lost, and deletes a committed leftover", async () => {
    const names = DEFAULT_SETTINGS.names;
    await ensureTopology(fx.nc, { ...DEFAULT_SETTINGS, ackWaitMs: 1000, maxDeliver: 2 });
    const js = jetstream(fx.nc);
    const jsm = await jetstreamManager(fx.nc);
    const rng = seededRng(1);
    for (const id of ["acked", "committed", "orphan"]) await js.publish("orders.web", JSON.stringify(makeOrder(id, "web", rng)), { msgID: id });
    const ledger = await Ledger.open(fx.nc, names);
    await ledger.record("committed", { result: "committed", worker: "w", attempt: 1, streamSeq: 2, at: new Date().toISOString() });
    const consumer = await js.consumers.get(names.stream, names.consumer);
    // Deliver until max deliver is reached, acking only the first order; pulls keep waiting so the
    // server notices the exhausted deliveries and publishes its advisories.
    for (let round = 0; round < 4; round++) {
      for await (const m of await consumer.fetch({ max_messages: 3, expires: 1500 })) if (m.seq === 1) m.ack();
    }
    // Both advisories must be stored before the purge, or a late one would survive it.
    await waitFor("the two MAX_DELIVERIES advisories", async () => (await jsm.streams.info(names.advisoryStream)).state.messages === 2, 15_000);
    await jsm.streams.purge(names.advisoryStream); // as if the advisory stream had had no leader
    const before = await jsm.consumers.info(names.stream, names.consumer);
    assert.equal(before.num_pending + before.num_ack_pending, 0, "nothing will deliver them again");
    assert.equal((await jsm.streams.info(names.stream)).state.messages, 2);

    const attempts = await AttemptLog.open(fx.nc, names);
    const ctx = { js, names, ledger, attempts, worker: "sweeper" };
    // No failure recorded for the orphan's last delivery: a suspect, sent to the quarantine lane.
    assert.deepEqual(await sweepOrphans(ctx, jsm), ["already-committed", "quarantined"]);
    assert.equal((await jsm.streams.info(names.stream)).state.messages, 0);
    assert.equal((await listDlq(fx.nc, names)).length, 0);
    const copy = await jsm.streams.getMessage(names.quarantineStream, { seq: 1 });
    assert.deepEqual([copy?.header?.get("Orderq-Original-Seq"), copy?.header?.get("Orderq-Original-Msg-Id")], ["3", "orphan"]);

    // With its last failure recorded, an orphan is dead-lettered as its advisory would have done.
    await js.publish("orders.web", JSON.stringify(makeOrder("failed", "web", rng)), { msgID: "failed" });
    for (let round = 0; round < 3; round++) {
      for await (const m of await consumer.fetch({ max_messages: 1, expires: 1500 })) {
        const { streamSequence: streamSeq, deliveryCount: attempt } = m.info;
        await attempts.record({
          orderId: "failed",
          streamSeq,
          attempt,
          worker: "w",
          error: "boom",
          errorClass: "Error",
          at: new Date().toISOString(),
        });
      }
    }
    await waitFor("the advisory of the failed order", async () => (await jsm.streams.info(names.advisoryStream)).state.messages === 1, 15_000);
    await jsm.streams.purge(names.advisoryStream);
    assert.deepEqual(await sweepOrphans(ctx, jsm), ["moved"]);
    const dlq = await listDlq(fx.nc, names);
    assert.deepEqual(
      dlq.map((e) => [e.orderId, e.reason, e.lastError]),
      [["failed", "max-deliveries", "boom"]],
    );
    assert.equal((await ledger.get("failed"))?.result, "dead-lettered");
    assert.deepEqual(await sweepOrphans(ctx, jsm), [], "a second sweep finds nothing");
  });
});
