/** Withdrawing an open pull on the pinned client, against a real nats-server. */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { DEFAULT_NAMES } from "../../src/core/nats/names.js";
import { withdrawPull } from "../../src/core/nats/pull-withdrawal.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const names = DEFAULT_NAMES;

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

    await js.publish("orders.web", "after");
    // The server drops the withdrawn pull when it next tries to deliver, asynchronously: wait for that.
    // Had the pull survived, "after" would be delivered to it and num_pending would never read 1.
    const info = await waitFor("the pull to be dropped", async () => {
      const i = await jsm.consumers.info(names.stream, names.consumer);
      return i.num_waiting === 0 && i.num_pending === 1 && i;
    }, 5_000, 50);
    assert.equal(info.num_ack_pending, 0, "the new order waits for the next pull");
  });

  it("leaves alone a pull it does not know how to withdraw", () => {
    assert.equal(withdrawPull({} as never), false);
  });
});
