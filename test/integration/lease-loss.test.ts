/**
 * A handler's `ctx.signal` is aborted when its worker loses the order's lease — no renewal reached the
 * broker for a full ack wait, because the connection was down or the process stalled — and the order
 * is left to its redelivery with a record that is not a failure (no nak, no dead-letter, nothing charged)
 * by the worker that lost it. In-process workers on a real nats-server,
 * reached through a TCP proxy the test cuts; the negative control is a handler slower than the ack
 * wait on a healthy link, whose lease its heartbeats keep.
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { TcpProxy } from "../../src/core/chaos/proxy.js";
import { seededRng } from "../../src/core/base/random.js";
import { connectNats } from "../../src/core/nats/connection.js";
import { namesFor, orderSubject, type Names } from "../../src/core/nats/names.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { AttemptLog } from "../../src/core/pipeline/attempts.js";
import type { OrderHandler } from "../../src/core/pipeline/handler.js";
import { readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import { makeOrder } from "../../src/core/pipeline/order.js";
import { Worker } from "../../src/core/pipeline/worker.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { testWorkerOptions } from "../support/worker-options.js";

const ACK_WAIT_MS = 1_000;

/** Blocks this thread (timers, sockets, everything) for `ms`, as a stalled or stopped process is. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe("a worker that loses an order's lease (ctx.signal)", function () {
  this.timeout(60_000);
  const fx = useServer();

  /**
   * One order through a main-lane worker connected via a proxy, with a quarantine-lane worker on the
   * direct connection; `fault` runs once the first delivery's handler is running. Returns what the
   * first delivery's handler saw and what the ledger and attempt log hold.
   */
  async function oneOrder(tag: string, fault: (proxy: TcpProxy) => Promise<void> | void, firstHandlerMs?: number) {
    const names: Names = namesFor({ stream: tag, consumer: "workers", dlqStream: `${tag}_DLQ`, ledgerBucket: `${tag.toLowerCase()}_ledger` });
    await ensureTopology(fx.nc, { ...DEFAULT_SETTINGS, names, ackWaitMs: ACK_WAIT_MS, maxDeliver: 5 });
    const proxy = await TcpProxy.start({ host: "127.0.0.1", port: fx.server.port });
    let viaProxy: NatsConnection | undefined;
    const aborts: string[] = [];
    const runs: { attempt: number; lane: string }[] = [];
    let firstSettled = false;
    const handler =
      (lane: string): OrderHandler =>
      async (_order, ctx) => {
        runs.push({ attempt: ctx.attempt, lane });
        if (lane !== "main" || ctx.attempt > 1) return;
        // The first delivery: until its signal aborts, or for firstHandlerMs when given.
        await new Promise<void>((resolve, reject) => {
          const signal = ctx.signal;
          signal.addEventListener("abort", () => {
            aborts.push(signal.reason instanceof Error ? signal.reason.message : String(signal.reason));
            reject(signal.reason as Error);
          });
          if (firstHandlerMs !== undefined) setTimeout(resolve, firstHandlerMs);
        }).finally(() => (firstSettled = true));
      };
    const workers: Worker[] = [];
    try {
      viaProxy = await connectNats({ server: proxy.url, name: "lease-loss test worker" });
      const main = new Worker(viaProxy, testWorkerOptions(names, { workerId: "w-main" }), handler("main"), seededRng(1));
      const lane = new Worker(fx.nc, testWorkerOptions(names, { workerId: "w-lane", lane: "quarantine" }), handler("quarantine"), seededRng(2));
      workers.push(main, lane);
      const running = workers.map((w) => w.run());
      const { seq } = await jetstream(fx.nc).publish(orderSubject(names, "web"), JSON.stringify(makeOrder(`${tag}-1`, "web", seededRng(3))), {
        msgID: `${tag}-1`,
      });
      await waitFor("the first delivery's handler running", () => runs.length > 0, 15_000);
      await fault(proxy);
      await waitFor(
        "the order committed and its first delivery's handler settled (aborted or done)",
        async () => firstSettled && (await readLedgerWrites(fx.nc, names)).length > 0,
        30_000,
      );
      for (const w of workers) w.stop();
      await Promise.all(running);
      const attempts = await AttemptLog.open(fx.nc, names);
      return {
        aborts,
        runs,
        writes: await readLedgerWrites(fx.nc, names),
        failures: await attempts.list(seq),
        firstEndedWithRecord: await attempts.endedWithRecord(seq, 1),
        main,
      };
    } finally {
      for (const w of workers) w.stop();
      await viaProxy?.close();
      await proxy.close();
    }
  }

  it("a connection down for longer than the ack wait: the signal aborts with the reason, the order runs again alone and commits once", async () => {
    const seen = await oneOrder("LEASECUT", async (proxy) => {
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, ACK_WAIT_MS * 2));
      proxy.heal();
    });
    assert.equal(seen.aborts.length, 1, JSON.stringify({ runs: seen.runs, writes: seen.writes, stats: seen.main.stats }));
    assert.match(seen.aborts[0], /^the worker lost this order's lease: no renewal could reach the broker for \d+ ms \(ack wait 1000 ms\)/);
    assert.deepEqual(
      seen.writes.map((w) => w.outcome.result),
      ["committed"],
    );
    // Its not-a-failure record may not get through while the link is still down: the redelivery is
    // then a suspect, retried alone — either way nothing is charged.
    assert.deepEqual(seen.failures, [], "no failed attempt charged by the worker that lost the lease");
    assert.equal(seen.main.stats.abandoned, 1);
    assert.equal(seen.main.stats.deadLettered, 0);
  });

  it("a process stalled for longer than the ack wait: the signal aborts when it runs again", async () => {
    const seen = await oneOrder("LEASESTALL", () => stall(ACK_WAIT_MS * 2));
    assert.equal(seen.aborts.length, 1, JSON.stringify({ runs: seen.runs, writes: seen.writes, stats: seen.main.stats }));
    assert.match(seen.aborts[0], /lost this order's lease/);
    assert.deepEqual(
      seen.writes.map((w) => w.outcome.result),
      ["committed"],
    );
    assert.deepEqual(seen.failures, []);
    assert.equal(seen.firstEndedWithRecord, true, "a not-a-failure record for the lost delivery, so it is not taken for a crash");
  });

  it("negative control: a handler three ack waits long on a healthy link keeps its lease and is not aborted", async () => {
    const seen = await oneOrder("LEASEKEPT", () => undefined, ACK_WAIT_MS * 3);
    assert.deepEqual(seen.aborts, []);
    assert.deepEqual(seen.runs, [{ attempt: 1, lane: "main" }], "run once, never redelivered");
    assert.deepEqual(
      seen.writes.map((w) => [w.outcome.result, w.outcome.lane]),
      [["committed", undefined]],
    );
  });
});
