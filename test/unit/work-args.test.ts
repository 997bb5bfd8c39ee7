/** workArgs against the command's own flag definitions: every option it writes, `orderq work` reads back. */
import assert from "node:assert/strict";
import { Flags, Parser } from "@oclif/core";
import Work from "../../src/commands/work.js";
import { workArgs, type WorkOptions } from "../../src/core/fleet/work-args.js";
import { namesFor } from "../../src/core/nats/names.js";

// --json is the flag oclif adds to every command with enableJsonFlag.
const flags = { ...Work.baseFlags, ...Work.flags, json: Flags.boolean() };
const parse = async (args: string[]) => (await Parser.parse(args, { flags, strict: true })).flags;

describe("workArgs", () => {
  it("writes every option as a flag the command parses back to the same value", async () => {
    const options: Required<WorkOptions> = {
      server: "nats://127.0.0.1:4333",
      settings: {
        names: namesFor({ stream: "S1", consumer: "c1", dlqStream: "D1", ledgerBucket: "l1" }),
        replicas: 3,
        ackWaitMs: 1500,
        maxDeliver: 7,
        dupWindowMs: 60_000,
        maxAckPending: 99,
      },
      concurrency: 9,
      processes: 2,
      autoscale: { min: 1, max: 6, targetLagSeconds: 3, cooldownMs: 1000, sampleMs: 500 },
      handler: "/srv/shop/handler.mjs",
      inbox: { table: "shop_inbox", poolSize: 4, maxBatch: 16 },
      handlerMs: 20,
      failRate: 0.25,
      poisonSwitch: false,
      backoffBaseMs: 20,
      backoffMaxMs: 100,
      confirmAck: true,
      exitWhenIdleMs: 2000,
      drainTimeoutMs: 5000,
      workerId: "w9",
      lane: "quarantine",
      mover: false,
      seed: 42,
      metricsPort: 9464,
      crashAfterCommitRate: 0.05,
      dropAckRate: 0.01,
      unsafe: true,
      trace: true,
      json: true,
    };
    const args = workArgs(options);
    assert.equal(args[0], "work");
    const f = await parse(args.slice(1));
    assert.deepEqual(
      [
        f.server,
        f.stream,
        f.consumer,
        f["dlq-stream"],
        f["ledger-bucket"],
        f.replicas,
        f["ack-wait"],
        f["max-deliver"],
        f["dup-window"],
        f["max-ack-pending"],
      ],
      ["nats://127.0.0.1:4333", "S1", "c1", "D1", "l1", 3, 1500, 7, 60_000, 99],
    );
    assert.deepEqual(
      [f.concurrency, f.processes, f.autoscale, f.min, f.max, f["target-lag-seconds"], f.cooldown, f["sample-every"]],
      [9, 2, true, 1, 6, 3, 1000, 500],
    );
    assert.deepEqual(
      [
        f["handler-ms"],
        f["fail-rate"],
        f["poison-switch"],
        f["backoff-base"],
        f["backoff-max"],
        f["confirm-ack"],
        f["exit-when-idle"],
        f["worker-id"],
        f.lane,
      ],
      [20, 0.25, false, 20, 100, true, 2000, "w9", "quarantine"],
    );
    assert.deepEqual(
      [f.mover, f.seed, f["metrics-port"], f["crash-after-commit-rate"], f["drop-ack-rate"], f.unsafe, f.trace, f.json],
      [false, 42, 9464, 0.05, 0.01, true, true, true],
    );
    assert.equal(f["drain-timeout"], 5000);
    assert.deepEqual(
      [f.handler, f["inbox-table"], f["inbox-pool"], f["inbox-batch"], f.inbox],
      ["/srv/shop/handler.mjs", "shop_inbox", 4, 16, undefined],
    );
    assert.ok(!args.some((a) => a.startsWith("postgres")), "the inbox URL never goes on a command line");
  });

  it("leaves out what is not given, so the command's defaults apply", async () => {
    assert.deepEqual(workArgs({}), ["work"]);
    const f = await parse(workArgs({ poisonSwitch: true, mover: true }).slice(1));
    assert.equal(f["poison-switch"], true);
    assert.equal(f.mover, true);
  });
});
