/**
 * Dead-lettered exactly once, whatever the payload and whatever the broker forgot: invalid payloads
 * re-sent after a clean broker restart (its duplicate window forgotten) get one DLQ entry each; copies
 * that would not fit (a body just under max payload, a 70,000-character id) are bounded, so every
 * message leaves ORDERS; `status` counts what no worker will be given again and no mover has moved.
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { json, runCli, type CliResult } from "../support/cli.js";
import { useServer, type ServerFixture } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { DEFAULT_NAMES as names, orderSubject } from "../../src/core/nats/names.js";
import { listDlq } from "../../src/core/ops/dlq-admin.js";

const cli = (fx: ServerFixture, args: string[]): Promise<CliResult> => runCli([...args, "--server", fx.server.url]);
async function cliJson(fx: ServerFixture, args: string[]): Promise<any> {
  const r = await cli(fx, [...args, "--json"]);
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return json(r);
}
const WORK = ["work", "--ack-wait", "1s", "--backoff-base", "20ms", "--backoff-max", "100ms", "--exit-when-idle", "1s"];

describe("DLQ: once per invalid payload across a clean broker restart", function () {
  const fx = useServer();

  it("the same publishes re-sent inside the duplicate window after a restart add no DLQ entry", async () => {
    const produce = ["produce", "--count", "60", "--invalid-rate", "0.2", "--seed", "5", "--id-prefix", "rs", "--ack-wait", "1s"];
    const first = await cliJson(fx, produce);
    assert.equal(first.accepted, 60);
    // And one payload with no message id at all: claimed by its content.
    await jetstream(fx.nc).publish(orderSubject(names, "api"), "not json, no id");
    await cliJson(fx, WORK);
    const before = await listDlq(fx.nc, names);
    const invalid = before.filter((e) => e.reason === "invalid-payload").length;
    assert.ok(invalid >= 6, `${invalid} invalid payloads`);

    await fx.server.stop(); // SIGTERM: a clean stop
    await fx.server.restart(); // same port, same store
    const nc = await connect({ servers: fx.server.url });
    try {
      const lastSeq = (await (await jetstreamManager(nc)).streams.info(names.stream)).state.last_seq;
      const again = await cliJson(fx, produce);
      assert.equal(again.accepted, 60);
      await jetstream(nc).publish(orderSubject(names, "api"), "not json, no id");
      // The broker forgot the ids of the acked (deleted) messages: it stored every re-send again.
      const stored = (await (await jetstreamManager(nc)).streams.info(names.stream)).state.last_seq - lastSeq;
      assert.equal(stored, 61, "the restarted server absorbed some re-sends: this test no longer shows the case");
      const worked = await cliJson(fx, WORK);
      assert.equal(worked.deadLettered, 0);
      assert.equal(worked.committed, 0, "the ledger absorbs the valid re-sends");
      const after = await listDlq(nc, names);
      const perPayload = new Map<string, number>();
      for (const e of after) {
        const key = e.originalHeaders["Nats-Msg-Id"]?.[0] ?? "(no id)";
        perPayload.set(key, (perPayload.get(key) ?? 0) + 1);
      }
      assert.deepEqual(
        [...perPayload].filter(([, n]) => n !== 1),
        [],
        "payloads with more than one DLQ entry",
      );
      assert.equal(after.length, before.length);
      assert.equal((await (await jetstreamManager(nc)).streams.info(names.stream)).state.messages, 0, "ORDERS is empty");
    } finally {
      await nc.close();
    }
  });
});

describe("DLQ: copies that would not fit", function () {
  const fx = useServer();

  it("a body just under max payload and a 70,000-character id both leave ORDERS for one bounded DLQ entry", async () => {
    await cliJson(fx, ["topology", "ensure", "--ack-wait", "1s"]);
    const js = jetstream(fx.nc);
    const maxPayload = fx.nc.info!.max_payload;
    const big = new Uint8Array(maxPayload - 200).fill(0x7a);
    await js.publish(orderSubject(names, "web"), big, { msgID: "big-1" });
    const longId = "L".repeat(70_000);
    const order = { id: longId, source: "web", items: [{ sku: "a", qty: 1, price: 1 }], amount: 1, createdAt: new Date().toISOString() };
    await js.publish(orderSubject(names, "web"), JSON.stringify(order), { msgID: "long-1" });

    const worked = await cliJson(fx, WORK);
    assert.equal(worked.deadLettered, 2);
    const jsm = await jetstreamManager(fx.nc);
    assert.equal((await jsm.streams.info(names.stream)).state.messages, 0, "both left ORDERS");

    const entries = await listDlq(fx.nc, names);
    assert.equal(entries.length, 2);
    const bySeq = (msgId: string) => entries.find((e) => e.originalHeaders["Nats-Msg-Id"]?.[0] === msgId)!.dlqSeq;
    const bigEntry = await cliJson(fx, ["dlq", "show", `seq:${bySeq("big-1")}`]);
    assert.equal(bigEntry.payloadOmitted.bytes, maxPayload - 200);
    assert.match(bigEntry.payloadOmitted.sha256, /^[0-9a-f]{64}$/);
    assert.equal(bigEntry.payload, "");
    const longEntry = await cliJson(fx, ["dlq", "show", `seq:${bySeq("long-1")}`]);
    assert.ok(longEntry.truncated.includes("orderId"));
    assert.match(longEntry.orderId, /^L{1024}… \[70000 characters, cut\]$/);
    assert.equal(longEntry.payload.id, longId, "the payload itself fits, and is kept whole");
    const shown = await cli(fx, ["dlq", "show", `seq:${bySeq("big-1")}`]);
    assert.match(shown.stdout, new RegExp(`not kept: ${maxPayload - 200} bytes, too large for a DLQ copy; sha256 [0-9a-f]{64}`));
  });
});

describe("status: orders stuck in ORDERS", function () {
  const fx = useServer();

  it("counts an order delivered max-deliver times that no mover has moved, which lag does not show", async () => {
    await cliJson(fx, ["topology", "ensure", "--ack-wait", "1s", "--max-deliver", "1"]);
    const js = jetstream(fx.nc);
    await js.publish(orderSubject(names, "web"), JSON.stringify({ id: "held-1" }), { msgID: "held-1" });
    // A consumer that takes it and never acks: after one ack wait it is never delivered again.
    const consumer = await js.consumers.get(names.stream, names.consumer);
    assert.ok(await consumer.next({ expires: 5000 }), "the order was delivered");
    const jsm = await jetstreamManager(fx.nc);
    // The server gives up on it when a pull finds its ack wait over (workers pull all the time).
    await waitFor("the delivery to expire", async () => {
      assert.equal(await consumer.next({ expires: 1000 }), null, "delivered again");
      return (await jsm.consumers.info(names.stream, names.consumer)).num_ack_pending === 0;
    });
    const status = await cliJson(fx, ["status"]);
    assert.deepEqual([status.consumer.lag, status.consumer.stuck], [0, 1]);
    const text = await cli(fx, ["status"]);
    assert.match(text.stdout, /stuck \(delivered max-deliver times, not yet moved to the DLQ\)\s*│\s*1/);

    // A worker's DLQ mover moves it; then nothing is stuck.
    await cliJson(fx, ["work", "--ack-wait", "1s", "--max-deliver", "1", "--exit-when-idle", "1s"]);
    assert.deepEqual([(await cliJson(fx, ["status"])).consumer.stuck, (await cliJson(fx, ["dlq", "list"])).total], [0, 1]);
  });
});
