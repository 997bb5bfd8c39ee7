/** `orderq work` tells the operator when its NATS link goes and comes back: one line per change. */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { workArgs } from "../../src/core/fleet/work-args.js";
import { DEFAULT_NAMES } from "../../src/core/nats/names.js";
import { startCli } from "../support/cli.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";

const count = (text: string, line: string) => text.split("\n").filter((l) => l === line).length;

describe("work's link lines", function () {
  this.timeout(60_000);
  const fx = useServer();

  it("prints disconnected, reconnecting and reconnected once each across a server restart", async () => {
    const work = startCli(workArgs({ server: fx.server.url }));
    let stderr = "";
    work.child.stderr!.on("data", (d) => (stderr += d));
    try {
      const jsm = await jetstreamManager(fx.nc);
      await waitFor(
        "the worker pulling",
        async () => (await jsm.consumers.info(DEFAULT_NAMES.stream, DEFAULT_NAMES.consumer).catch(() => undefined))?.num_waiting,
      );
      await fx.server.stop();
      await waitFor("the reconnecting line", () => stderr.includes("reconnecting to NATS"));
      await sleep(1500); // the client retries every 250 ms meanwhile: several attempts, still one line
      await fx.server.restart();
      await waitFor("the reconnected line", () => stderr.includes("reconnected to NATS"));
      work.child.kill("SIGTERM");
      const result = await work.done;
      assert.equal(result.code, 0, result.stderr);
      const url = new URL(fx.server.url);
      const at = `(${url.hostname}:${url.port})`;
      assert.equal(count(result.stderr, `orderq: disconnected from NATS ${at}`), 1, result.stderr);
      assert.equal(count(result.stderr, "orderq: reconnecting to NATS…"), 1, result.stderr);
      assert.equal(count(result.stderr, `orderq: reconnected to NATS ${at}`), 1, result.stderr);
    } finally {
      work.child.kill("SIGKILL"); // only if an assertion failed before it exited
    }
  });
});
