/**
 * A DLQ move claims the order's ledger key before it copies the order (dead-letter.ts). What a worker
 * or a mover does when it meets such a claim, or a key whose outcome it cannot read, decides whether
 * an order can vanish: found by the `everything` chaos scenario (issue 17).
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { AttemptLog } from "../../src/core/pipeline/attempts.js";
import { deadLetter } from "../../src/core/pipeline/dead-letter.js";
import { listDlq } from "../../src/core/ops/dlq-admin.js";
import { Ledger, readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import { makeOrder } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { Worker } from "../../src/core/pipeline/worker.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { testWorkerOptions } from "../support/worker-options.js";

describe("dead-letter claims", function () {
  this.timeout(60_000);
  const fx = useServer();
  const names = DEFAULT_SETTINGS.names;

  before(async () => {
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
  });

  it("a worker whose commit meets a DLQ move's claim finishes the move before it acks: the order is not lost", async () => {
    const js = jetstream(fx.nc);
    const jsm = await jetstreamManager(fx.nc);
    const id = "claimed-1";
    const { seq } = await js.publish("orders.web", JSON.stringify(makeOrder(id, "web", seededRng(1))), { msgID: id });
    // The advisory's mover (or the sweep) claimed this message while a worker held it, then failed
    // before its copy (the broker was restarting): the claim is in the ledger, the DLQ has nothing.
    const ledger = await Ledger.open(fx.nc, names);
    await ledger.record(id, {
      result: "dead-lettered",
      worker: "mover",
      attempt: 5,
      streamSeq: seq,
      at: new Date().toISOString(),
      reason: "max-deliveries",
    });
    await ledger.close();

    const worker = new Worker(fx.nc, testWorkerOptions(names), async () => {}, seededRng(2));
    const running = worker.run();
    try {
      await waitFor("the worker to ack the order", async () => (await jsm.streams.info(names.stream)).state.messages === 0, 15_000);
    } finally {
      worker.stop();
      await running;
    }
    const dlq = await listDlq(fx.nc, names);
    assert.deepEqual(
      dlq.map((e) => [e.orderId, e.reason, e.originalSeq]),
      [[id, "max-deliveries", seq]],
      "acked, so it must be in the DLQ",
    );
    const writes = (await readLedgerWrites(fx.nc, names)).filter((w) => w.orderId === id);
    assert.deepEqual(
      writes.map((w) => w.outcome.result),
      ["dead-lettered"],
      "and never committed as well",
    );
  });

  it("a DLQ move that finds the key held but cannot read its outcome copies nothing (it may be committed)", async () => {
    const js = jetstream(fx.nc);
    const before = (await listDlq(fx.nc, names)).length;
    // A ledger whose key exists (the create failed) but whose read came back empty, as a lagging
    // replica answers.
    const ledger = { record: async () => ({ written: false }) } as unknown as Ledger;
    const ctx = { js, names, ledger, attempts: await AttemptLog.open(fx.nc, names), worker: "w-test" };
    const payload = new TextEncoder().encode(JSON.stringify(makeOrder("unread-1", "web", seededRng(3))));
    await assert.rejects(
      deadLetter(ctx, { subject: "orders.web", streamSeq: 999, payload, deliveries: 5, reason: "max-deliveries", validOrderId: "unread-1" }),
      /could not be read/,
    );
    assert.equal((await listDlq(fx.nc, names)).length, before, "nothing copied");
  });
});
