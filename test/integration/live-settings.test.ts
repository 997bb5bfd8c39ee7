/**
 * Issue 16, item 4: workers follow the consumer's settings as an operator changes them while they run,
 * and count what the ledger holds. In-process workers on one server; each test has names of its own.
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { listDlq } from "../../src/core/ops/dlq-admin.js";
import { Ledger, readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import { makeOrder } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { namesFor, orderSubject, type Names } from "../../src/core/nats/names.js";
import { DEFAULT_SETTINGS, ensureTopology, type TopologySettings } from "../../src/core/nats/topology.js";
import { Worker } from "../../src/core/pipeline/worker.js";
import { testWorkerOptions } from "../support/worker-options.js";
import type { OrderHandler } from "../../src/core/pipeline/handler.js";
import { useServer, type ServerFixture } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { setTimeout as sleep } from "node:timers/promises";

async function publish(fx: ServerFixture, names: Names, ids: string[]): Promise<Map<string, number>> {
  const js = jetstream(fx.nc);
  const seqs = new Map<string, number>();
  for (const id of ids)
    seqs.set(id, (await js.publish(orderSubject(names, "web"), JSON.stringify(makeOrder(id, "web", seededRng(1))), { msgID: id })).seq);
  return seqs;
}

/** Runs `worker` until ORDERS is empty and nothing awaits an ack, then stops it. */
async function runUntilDone(fx: ServerFixture, names: Names, worker: Worker): Promise<void> {
  const jsm = await jetstreamManager(fx.nc);
  const running = worker.run();
  try {
    await waitFor(
      "every order acked",
      async () => {
        const [stream, consumer] = await Promise.all([jsm.streams.info(names.stream), jsm.consumers.info(names.stream, names.consumer)]);
        return stream.state.messages === 0 && consumer.num_ack_pending === 0;
      },
      45_000,
    );
  } finally {
    worker.stop();
    await running;
  }
}

describe("settings changed while workers run (issue 16, item 4)", function () {
  this.timeout(90_000);
  const fx = useServer();

  it("a dead-letter claim under the worker's own id, sequence and delivery is not counted as its commit", async () => {
    const names = namesFor({ stream: "OWN", consumer: "workers", dlqStream: "OWN_DLQ", ledgerBucket: "own_ledger" });
    await ensureTopology(fx.nc, { ...DEFAULT_SETTINGS, names });
    const [id] = ["own-1"];
    const seqs = await publish(fx, names, [id]);
    const ledger = await Ledger.open(fx.nc, names);
    // While the handler runs, this process's DLQ mover claims the order (its lease ran out at max
    // deliver) — under the same worker id, stream sequence and delivery as the commit to come.
    const handler: OrderHandler = async (order, ctx) => {
      await ledger.record(order.id, {
        result: "dead-lettered",
        worker: "w-test",
        attempt: ctx.attempt,
        streamSeq: seqs.get(order.id)!,
        at: new Date().toISOString(),
        reason: "max-deliveries",
      });
    };
    const worker = new Worker(fx.nc, testWorkerOptions(names), handler, seededRng(2));
    await runUntilDone(fx, names, worker);
    await ledger.close();

    const writes = (await readLedgerWrites(fx.nc, names)).filter((w) => w.orderId === id);
    assert.deepEqual(
      writes.map((w) => w.outcome.result),
      ["dead-lettered"],
    );
    assert.deepEqual(
      (await listDlq(fx.nc, names)).map((e) => e.orderId),
      [id],
    );
    assert.deepEqual(
      { committed: worker.stats.committed, deadLettered: worker.stats.deadLettered },
      { committed: 0, deadLettered: 1 },
      "the stats say what the ledger holds",
    );
  });

  it("follows an ack wait shortened from 30 s to 3 s under running handlers: no lease lost, each order runs once, the change is logged", async () => {
    const names = namesFor({ stream: "LIVE", consumer: "workers", dlqStream: "LIVE_DLQ", ledgerBucket: "live_ledger" });
    const settings: TopologySettings = { ...DEFAULT_SETTINGS, names, ackWaitMs: 30_000, maxDeliver: 5 };
    await ensureTopology(fx.nc, settings);
    const ids = ["live-1", "live-2", "live-3"];
    await publish(fx, names, ids);
    const runs = new Map<string, number>();
    // 5 s: longer than the new ack wait, so a lease kept by the old interval (every 10 s) would run out.
    const handler: OrderHandler = async (order) => {
      runs.set(order.id, (runs.get(order.id) ?? 0) + 1);
      await sleep(5_000);
    };
    const notices: string[] = [];
    const worker = new Worker(fx.nc, testWorkerOptions(names, { onNotice: (m) => notices.push(m) }), handler, seededRng(3));
    const done = runUntilDone(fx, names, worker);
    await waitFor("every handler running", async () => runs.size === ids.length, 15_000);
    // What `orderq topology ensure --ack-wait 3s --max-deliver 4 --update` does.
    await ensureTopology(fx.nc, { ...settings, ackWaitMs: 3_000, maxDeliver: 4 }, { verify: true, update: true });
    await done;

    assert.deepEqual(
      ids.map((id) => runs.get(id)),
      [1, 1, 1],
      "no order was redelivered while its handler ran",
    );
    assert.deepEqual({ committed: worker.stats.committed, quarantined: worker.stats.quarantined }, { committed: 3, quarantined: 0 });
    assert.equal(notices.length, 1, notices.join("\n"));
    assert.match(notices[0], /ack wait 30s → 3s \(in-progress acks now every 1s\), max deliver 5 → 4$/);
  });
});
