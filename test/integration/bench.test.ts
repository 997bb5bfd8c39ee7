/**
 * `orderq bench`: the shape of its result and its exactly-once verdicts, never its speed (CI machines
 * are slow and shared). It starts its own nats-server; NATS_URL must not lead it to another one.
 */
import assert from "node:assert/strict";
import type { BenchResult } from "../../src/core/bench/runner.js";
import type { SoakResult } from "../../src/core/bench/soak.js";
import type { DlqScaleResult } from "../../src/core/bench/dlq-scale.js";
import { json, runCli } from "../support/cli.js";

describe("orderq bench", function () {
  this.timeout(240_000);

  it("measures every phase on its own servers (NATS, with --inbox PostgreSQL, with --intake a gateway) and verifies each one exactly-once", async () => {
    // A NATS_URL, an ORDERQ_INBOX_URL and an ORDERQ_API_TOKEN that point nowhere: the bench must ignore them and start its own servers.
    const args = [
      "bench",
      "--orders",
      "2000",
      "--runs",
      "1",
      "--rate",
      "500",
      "--latency-seconds",
      "2",
      "--inbox",
      "--inbox-pool",
      "4",
      "--intake",
      "--json",
    ];
    const env = { NATS_URL: "nats://127.0.0.1:1", ORDERQ_INBOX_URL: "postgres://nobody@127.0.0.1:1/none", ORDERQ_API_TOKEN: "not-the-bench-gateway" };
    const result = await runCli(args, env);
    assert.equal(result.code, 0, result.stderr);
    const r = json<BenchResult>(result);
    assert.equal(r.environment.server.ours, true);
    assert.doesNotMatch(r.environment.server.url, /:4222$|:1$/);
    assert.equal(r.verified, true);
    assert.equal(r.runs.length, 1);
    const phases = r.runs[0].phases;
    assert.deepEqual(
      phases.map((p) => p.phase),
      ["publish", "consume", "floor", "produce", "work", "latency", "inbox-floor", "inbox-work", "intake", "intake-latency"],
    );
    for (const p of phases) {
      assert.equal(p.verification.ok, true, `${p.phase}: ${p.verification.detail}`);
      assert.ok(p.rate > 0 && p.elapsedMs > 0 && p.count > 0, `${p.phase} figures: ${JSON.stringify(p)}`);
      assert.ok(p.cpu.clientSeconds >= 0 && p.cpu.serverSeconds !== null && p.cpu.serverSeconds >= 0, `${p.phase} cpu`);
      // PostgreSQL's CPU is metered in the inbox phases, and only there.
      assert.equal(p.cpu.databaseSeconds !== undefined, p.phase.startsWith("inbox-"), `${p.phase} database cpu`);
    }
    // Verified from the tables: 2,000 inbox rows each, and the handler's 2,000 orders rows with stock to match.
    const [floor, inboxWork] = [phases[6], phases[7]];
    assert.equal(floor.verification.expected, 2000);
    assert.match(floor.verification.detail, /^2000 inbox rows, 0 inserts failed/);
    assert.equal(inboxWork.verification.expected, 2000);
    assert.match(
      inboxWork.verification.detail,
      /^2000 committed, 0 lost, 0 unexpected; effects: 2000 orders once \(row and stock movements\), 0 lost, 0 duplicated, 0 unexpected, stock down by exactly/,
    );
    assert.equal(inboxWork.workerPeakRssMb!.length, 1);
    // The default batch: the example handler appends its stock movements, so batches do not deadlock.
    assert.deepEqual(r.config.inbox, { poolSize: 4, maxBatch: 16 });
    assert.match(r.environment.database?.version ?? "", /^\d+/);
    const latency = phases.find((p) => p.phase === "latency")!;
    assert.equal(latency.count, 1000, "500/s for 2 s");
    assert.equal(latency.verification.expected, 3000, "2,000 warm-up orders (--orders) are verified too");
    assert.equal(latency.latency!.samples, 1000);
    for (const p of phases.filter((p) => p.phase === "work" || p.phase === "latency")) {
      assert.equal(p.workerPeakRssMb!.length, 1);
      assert.ok(p.workerPeakRssMb![0] > 0);
    }
    const s = r.summary;
    for (const rate of Object.values(s.rates)) assert.ok(rate > 0);
    assert.ok(s.produceRatio > 0 && s.workRatio > 0 && s.floorRatio > 0 && s.workToFloor > 0 && s.workerPeakRssMb > 0);
    const l = s.latency;
    assert.ok(l.p50Ms > 0 && l.p50Ms <= l.p90Ms && l.p90Ms <= l.p99Ms && l.p99Ms <= l.p999Ms && l.p999Ms <= l.maxMs, JSON.stringify(l));
    const inbox = s.inbox!;
    assert.ok(inbox.rates["inbox-floor"] > 0 && inbox.rates["inbox-work"] > 0 && inbox.workToFloor > 0, JSON.stringify(inbox));
    assert.ok(inbox.cpuPerOrderUs["inbox-work"].client > 0 && inbox.cpuPerOrderUs["inbox-work"].database !== null, JSON.stringify(inbox));
    // Through the gateway: every order answered 202 and stored once, flat out and then 500/s for 2 s.
    const [intake, intakeLatency] = [phases[8], phases[9]];
    assert.equal(intake.count, 2000);
    assert.match(intake.verification.detail, /^2000 answered 202, 2000 stored, 0 replayed, 0 failed or indeterminate/);
    // The gateway's own CPU, a part of the client's (the bench process and the gateway).
    for (const p of [intake, intakeLatency])
      assert.ok(p.cpu.gatewaySeconds! >= 0 && p.cpu.gatewaySeconds! <= p.cpu.clientSeconds, JSON.stringify(p.cpu));
    assert.equal(intakeLatency.count, 1000);
    assert.equal(intakeLatency.latency!.samples, 1000);
    const i = s.intake!;
    assert.ok(i.rates.intake > 0 && i.produceRatio > 0 && i.latency.p50Ms > 0 && i.latency.p50Ms <= i.latency.p99Ms, JSON.stringify(i));
    assert.equal(r.targets.length, 12, "issues 7 (5), 13 (3), 15 (2) and 12 (2)");
    for (const t of r.targets) assert.equal(typeof t.met, "boolean");
  });

  it("--soak: rounds on one topology with a short horizon, each verified, with the server's memory and store", async () => {
    const result = await runCli(["bench", "--soak", "3", "--orders", "500", "--soak-horizon", "4s", "--json"], { NATS_URL: "nats://127.0.0.1:1" });
    assert.equal(result.code, 0, result.stderr);
    const r = json<SoakResult>(result);
    assert.deepEqual([r.config.horizonMs, r.config.dupWindowMs], [4000, 2000]);
    assert.deepEqual(
      r.rounds.map((x) => [x.round, x.totalOrders, x.verification.ok]),
      [
        [1, 500, true],
        [2, 1000, true],
        [3, 1500, true],
      ],
    );
    for (const x of r.rounds) assert.ok(x.workRate > 0 && x.serverRssMb! > 0 && x.storeMb > 0 && x.ledgerKeys > 0, JSON.stringify(x));
    // A round lasts at least the horizon (4 s): round k ends no sooner than 4k s after the soak began.
    assert.deepEqual(
      r.rounds.map((x) => x.elapsedSeconds >= 4 * x.round),
      [true, true, true],
      JSON.stringify(r.rounds.map((x) => x.elapsedSeconds)),
    );
    assert.deepEqual(
      r.targets.map((t) => typeof t.met),
      ["boolean", "boolean"],
    );
  });

  it("--dlq: times the DLQ tools against a DLQ it fills", async () => {
    const result = await runCli(["bench", "--dlq", "300", "--json"], { NATS_URL: "nats://127.0.0.1:1" });
    assert.equal(result.code, 0, result.stderr);
    const r = json<DlqScaleResult>(result);
    assert.equal(r.entries, 300);
    assert.deepEqual(
      r.timings.map((t) => t.what),
      [
        "orderq --version (start-up alone)",
        "dlq show seq:150",
        "dlq list --limit 20",
        "dlq list --limit 20 --reason non-retryable",
        "status",
        "dlq show b-149 (by order id: reads every entry)",
      ],
    );
    for (const t of r.timings) assert.ok(t.inProcessMs >= 0 && t.commandMs! > 0, JSON.stringify(t));
  });
});
