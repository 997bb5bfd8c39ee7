/** The DLQ tally behind `orderq status --watch`: incremental, and right after every kind of change. */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { encodeDlqHeaders, type DlqEntry, type DlqReason } from "../../src/core/pipeline/dlq-entry.js";
import { scanDlq } from "../../src/core/ops/dlq-admin.js";
import { DEFAULT_NAMES, dlqSubject } from "../../src/core/nats/names.js";
import { DlqTally } from "../../src/core/ops/status.js";
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

describe("DLQ tally (status --watch)", function () {
  const fx = useServer();
  let n = 0;

  const add = async (reason: DlqReason) => {
    n++;
    await jetstream(fx.nc).publish(dlqSubject(names, "web"), "{}", { headers: encodeDlqHeaders(entry(n, reason), `tally-${n}`) });
  };

  /** A tally whose DLQ reads are recorded as [from, to] ranges. */
  const recordingTally = () => {
    const reads: [number, number][] = [];
    const tally = new DlqTally((nc, nm, range) => {
      reads.push([range?.fromSeq ?? 1, range?.toSeq ?? Infinity]);
      return scanDlq(nc, nm, range);
    });
    return { tally, reads };
  };

  /** Updates the tally and returns its counts, with the sequence ranges it read meanwhile. */
  const update = async ({ tally, reads }: ReturnType<typeof recordingTally>) => {
    reads.length = 0;
    const info = await (await jetstreamManager(fx.nc)).streams.info(names.dlqStream);
    return { ...(await tally.update(fx.nc, names, info)), reads: [...reads] };
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

  it("reads only what was added, and stays right after deletions, purges and a re-created stream", async () => {
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    const jsm = await jetstreamManager(fx.nc);
    const tally = recordingTally();

    let r = await update(tally);
    assert.deepEqual(
      [r.byReason, r.foreign, r.reads],
      [{ "invalid-payload": 0, "non-retryable": 0, "max-deliveries": 0, "crashed-worker": 0 }, 0, []],
      "an empty DLQ reads nothing",
    );

    await add("invalid-payload");
    await add("non-retryable");
    await add("max-deliveries");
    await jetstream(fx.nc).publish(dlqSubject(names, "web"), "by hand");
    r = await update(tally);
    assert.deepEqual(
      [r.byReason, r.foreign, r.reads],
      [{ "invalid-payload": 1, "non-retryable": 1, "max-deliveries": 1, "crashed-worker": 0 }, 1, [[1, 4]]],
    );

    r = await update(tally);
    assert.deepEqual(r.reads, [], "nothing new: nothing read");

    await add("max-deliveries");
    r = await update(tally);
    assert.deepEqual([r.byReason["max-deliveries"], r.reads], [2, [[5, 5]]], "only the new entry read");

    await jsm.streams.deleteMessage(names.dlqStream, 1); // the first: below the new first sequence
    r = await update(tally);
    assert.deepEqual([r.byReason, r.reads], [{ "invalid-payload": 0, "non-retryable": 1, "max-deliveries": 2, "crashed-worker": 0 }, []]);

    await jsm.streams.deleteMessage(names.dlqStream, 3); // one in the middle: the counts disagree with the depth
    r = await update(tally);
    assert.deepEqual(
      [r.byReason, r.foreign, r.reads],
      [{ "invalid-payload": 0, "non-retryable": 1, "max-deliveries": 1, "crashed-worker": 0 }, 1, [[2, 5]]],
    );

    await jsm.streams.purge(names.dlqStream);
    r = await update(tally);
    assert.deepEqual([r.byReason, r.foreign], [{ "invalid-payload": 0, "non-retryable": 0, "max-deliveries": 0, "crashed-worker": 0 }, 0]);

    await jsm.streams.delete(names.dlqStream);
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    await add("non-retryable");
    r = await update(tally);
    assert.deepEqual(
      [r.byReason, r.reads],
      [{ "invalid-payload": 0, "non-retryable": 1, "max-deliveries": 0, "crashed-worker": 0 }, [[1, 1]]],
      "a re-created stream is read from 1",
    );

    // Re-created again, and grown past where the tally stood before the next refresh.
    await jsm.streams.delete(names.dlqStream);
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    for (let i = 0; i < 3; i++) await add("invalid-payload");
    r = await update(tally);
    assert.deepEqual([r.byReason, r.reads], [{ "invalid-payload": 3, "non-retryable": 0, "max-deliveries": 0, "crashed-worker": 0 }, [[1, 3]]]);
  });
});
