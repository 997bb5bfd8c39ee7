/**
 * Canaries for the patches in src/core/nats/client-internals.ts: each must be active on the pinned
 * client (a client upgrade that turns one off fails here), and an unknown shape must be left alone.
 */
import assert from "node:assert/strict";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Consumer, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { connect, headers } from "@nats-io/transport-node";
import { DEFAULT_NAMES } from "../../src/core/nats/names.js";
import { coalesceWrites, constantHeaders, fetchTo, withdrawPull } from "../../src/core/nats/client-internals.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { makeOrder } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const names = DEFAULT_NAMES;

/**
 * After a withdrawal: publishes one more order and waits for the server to drop the withdrawn pull,
 * which it does when it next tries to deliver, asynchronously. Had the pull survived, the order would
 * be delivered to it and num_pending would never read 1.
 */
async function assertPullDropped(js: JetStreamClient, jsm: JetStreamManager): Promise<void> {
  await js.publish("orders.web", "after");
  const info = await waitFor(
    "the pull to be dropped",
    async () => {
      const i = await jsm.consumers.info(names.stream, names.consumer);
      return i.num_waiting === 0 && i.num_pending === 1 && i;
    },
    5_000,
    50,
  );
  assert.equal(info.num_ack_pending, 0, "the new order waits for the next pull");
}

describe("withdrawing a pull", function () {
  const fx = useServer();

  it("hands over what was delivered, ends the pull, and the server sends it nothing more", async () => {
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    const js = jetstream(fx.nc);
    const jsm = await jetstreamManager(fx.nc);
    for (let i = 0; i < 3; i++) await js.publish("orders.web", `before-${i}`);
    const consumer = await js.consumers.get(names.stream, names.consumer);
    // Far longer than the test may take: only the withdrawal can end this pull.
    const pull = await consumer.fetch({ max_messages: 10, expires: 600_000 });
    const seen: string[] = [];
    const ended = (async () => {
      for await (const msg of pull) {
        seen.push(msg.string());
        msg.ack();
        if (seen.length === 3) assert.equal(withdrawPull(pull), true, "the client's pull has no drainable subscription");
      }
    })();
    await ended;
    assert.deepEqual(seen, ["before-0", "before-1", "before-2"]);

    await assertPullDropped(js, jsm);
  });

  it("leaves alone a pull it does not know how to withdraw", () => {
    assert.equal(withdrawPull({} as never), false);
  });
});

describe("a pull's orders handed over by callback", function () {
  const fx = useServer();

  it("is active on the pinned client: each order reaches the callback, closed() resolves when the pull is done", async () => {
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    const js = jetstream(fx.nc);
    for (let i = 0; i < 3; i++) await js.publish("orders.web", `cb-${i}`);
    const consumer = await js.consumers.get(names.stream, names.consumer);
    const seen: string[] = [];
    const deliver = (msg: JsMsg) => {
      seen.push(msg.string());
      msg.ack();
    };
    const pull = await fetchTo(consumer, { max_messages: 3, expires: 600_000 }, deliver);
    assert.equal(
      (pull as ConsumerMessages & { callback?: unknown }).callback,
      deliver,
      "the pull does not take the callback: it is iterated instead",
    );
    assert.equal(await pull.closed(), undefined, "ended by its last order, with no error");
    assert.deepEqual(seen, ["cb-0", "cb-1", "cb-2"]);
  });

  it("can be withdrawn like an iterated pull: closed() resolves, and the server sends it nothing more", async () => {
    const js = jetstream(fx.nc);
    const jsm = await jetstreamManager(fx.nc);
    const consumer = await js.consumers.get(names.stream, names.consumer);
    for (let i = 0; i < 2; i++) await js.publish("orders.web", `w-${i}`);
    const seen: string[] = [];
    // Far longer than the test may take: only the withdrawal can end this pull.
    // The callback runs only once orders arrive, after fetchTo has resolved: `pull` is set by then.
    const pull: ConsumerMessages = await fetchTo(consumer, { max_messages: 10, expires: 600_000 }, (msg) => {
      seen.push(msg.string());
      msg.ack();
      if (seen.length === 2) assert.equal(withdrawPull(pull), true);
    });
    await pull.closed();
    assert.deepEqual(seen, ["w-0", "w-1"]);
    await assertPullDropped(js, jsm);
  });

  it("iterates a pull that does not take the callback (another client), calling it the same way", async () => {
    const msgs = ["a", "b"].map((text) => ({ string: () => text }) as JsMsg);
    const pull = {
      async *[Symbol.asyncIterator]() {
        yield* msgs;
      },
      closed: () => Promise.resolve(),
    };
    const consumer = { fetch: () => Promise.resolve(pull) } as unknown as Consumer;
    const seen: string[] = [];
    let both!: () => void;
    const delivered = new Promise<void>((resolve) => (both = resolve));
    await fetchTo(consumer, { max_messages: 2, expires: 1_000 }, (msg) => {
      seen.push(msg.string());
      if (seen.length === 2) both();
    });
    await delivered;
    assert.deepEqual(seen, ["a", "b"]);
  });

  it("ends with the error that ended it: closed() resolves with it (the worker counts it and pauses)", async () => {
    const js = jetstream(fx.nc);
    const jsm = await jetstreamManager(fx.nc);
    await jsm.streams.add({ name: "DOOMED", subjects: ["doomed.>"] });
    await jsm.consumers.add("DOOMED", { durable_name: "doomed", ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get("DOOMED", "doomed");
    // Far longer than the test may take: only the consumer's deletion can end this pull.
    const pull = await fetchTo(consumer, { max_messages: 10, expires: 600_000 }, () => assert.fail("no order was published"));
    await jsm.consumers.delete("DOOMED", "doomed");
    const ended = await pull.closed();
    assert.ok(ended instanceof Error, `closed() resolved with ${String(ended)}`);
    assert.match(ended.message, /consumer deleted/i);
  });
});

describe("write coalescing on the hot-path connections", function () {
  const fx = useServer();

  it("is active on the pinned client, and requests and publishes still flow", async () => {
    const nc = await connect({ servers: fx.server.url });
    try {
      assert.equal(coalesceWrites(nc), true, "the client's internals changed: the optimisation is off");
      await ensureTopology(nc, DEFAULT_SETTINGS);
      const js = jetstream(nc);
      const acks = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          js.publish("orders.web", JSON.stringify(makeOrder(`co-${i}`, "web", seededRng(i))), { msgID: `co-${i}` }),
        ),
      );
      assert.deepEqual(
        acks.map((a) => a.seq),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      assert.equal(coalesceWrites({} as never), false, "an unknown shape is left alone");
    } finally {
      await nc.close();
    }
  });
});

describe("constant headers", () => {
  type Encodable = { encode(): Uint8Array };

  it("are encoded once, to the bytes the client would send", () => {
    const plain = headers();
    plain.set("Nats-Expected-Last-Subject-Sequence", "0");
    assert.equal(typeof (plain as unknown as Encodable).encode, "function", "the client's headers changed shape: the cache is off");
    const constant = constantHeaders({ "Nats-Expected-Last-Subject-Sequence": "0" }) as unknown as Encodable;
    assert.deepEqual(constant.encode(), (plain as unknown as Encodable).encode());
    assert.equal(constant.encode(), constant.encode(), "the same bytes each time, not a new encoding");
  });

  it("refuse changes, which the cached bytes would not follow", () => {
    const constant = constantHeaders({ a: "1" });
    assert.throws(() => constant.set("a", "2"), /constant headers cannot be changed/);
    assert.throws(() => constant.append("b", "1"), /constant headers cannot be changed/);
    assert.throws(() => constant.delete("a"), /constant headers cannot be changed/);
    assert.equal(constant.get("a"), "1");
  });
});
