/**
 * A server that requires a login: the credential flags (and their NATS_* variables) must reach every
 * process orderq starts — `work -p` children, chaos and bench workers — and a run on someone else's
 * server (`--server`) must leave that server's streams as it found them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { PHASES } from "../../src/core/bench/summary.js";
import type { ChaosResult } from "../../src/core/chaos/runner.js";
import { json, runCli, startCli } from "../support/cli.js";
import { descendants } from "../support/processes.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { workArgs } from "../../src/core/fleet/work-args.js";

const USER = "orderq";
const PASSWORD = "s3cret pass";
const LOGIN = ["--user", USER, "--password", PASSWORD];

/** Two workers, one of them killed early: small enough for CI, and every worker is a child process. */
const SCENARIO = `description: credentials reach the chaos workers
orders: 60
rate: 200
workers:
  processes: 2
  concurrency: 8
consumer:
  ack-wait: 1s
  max-deliver: 10
faults:
  - kind: kill-worker
    at: 200ms
time-limit: 60s
`;

async function streamNames(nc: NatsConnection): Promise<string[]> {
  const names: string[] = [];
  for await (const s of (await jetstreamManager(nc)).streams.list()) names.push(s.config.name);
  return names.sort();
}

describe("an authenticating server", function () {
  const fx = useServer({ auth: { user: USER, password: PASSWORD } });

  it("refuses a command without credentials, or with a wrong password, in one line with exit 3", async () => {
    for (const login of [[], ["--user", USER, "--password", "wrong"]]) {
      const out = await runCli(["produce", "--count", "1", "--server", fx.server.url, ...login]);
      assert.equal(out.code, 3, out.stderr);
      assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
      assert.match(out.stderr, /cannot connect to NATS at .*: Authorization Violation/);
    }
  });

  it("produce with the flags, then work -p 2 with NATS_USER / NATS_PASSWORD: the child workers log in too", async () => {
    const produced = await runCli(["produce", "--count", "40", "--id-prefix", "env", "--server", fx.server.url, "--json", ...LOGIN]);
    assert.equal(json(produced).accepted, 40, produced.stderr);
    const worked = await runCli(workArgs({ processes: 2, exitWhenIdleMs: 1000, server: fx.server.url, json: true }), {
      NATS_USER: USER,
      NATS_PASSWORD: PASSWORD,
    });
    assert.equal(worked.code, 0, worked.stderr);
    assert.equal(json(worked).committed, 40);
  });

  it("work -p 2 with --user/--password flags: the children log in, and the password is not on their command line", async () => {
    const produced = await runCli(["produce", "--count", "40", "--id-prefix", "flags", "--server", fx.server.url, "--json", ...LOGIN]);
    assert.equal(json(produced).accepted, 40, produced.stderr);
    // 3 s before idle counts, so the workers are there to look at.
    const run = startCli([...workArgs({ processes: 2, exitWhenIdleMs: 3000, server: fx.server.url, json: true }), ...LOGIN]);
    const workers = await waitFor("two worker processes and the quarantine lane", () => {
      const found = descendants(run.child.pid!);
      return found.length === 3 && found;
    });
    for (const pid of workers) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      assert.ok(argv.includes("work"), argv.join(" "));
      assert.ok(!argv.some((a) => a.includes(PASSWORD) || a === "--password" || a === "--user"), `worker ${pid}: ${argv.join(" ")}`);
    }
    const worked = await run.done;
    assert.equal(worked.code, 0, worked.stderr);
    assert.equal(json(worked).committed, 40);
  });

  it("chaos --server: its workers get the credentials, the run is VALID, and it removes what it created", async () => {
    const before = await streamNames(fx.nc);
    const dir = mkdtempSync(join(tmpdir(), "orderq-creds-"));
    const file = join(dir, "creds.yaml");
    writeFileSync(file, SCENARIO);
    const out = await runCli(["chaos", file, "--server", fx.server.url, "--seed", "7", "--json", ...LOGIN]);
    rmSync(dir, { recursive: true, force: true });
    const result = json<ChaosResult>(out);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(result.valid, true);
    assert.equal(result.check?.categories.ok.count, 60);
    assert.ok((result.faults.byKind["kill-worker"]?.injected ?? 0) >= 1, "the worker kill happened");
    assert.deepEqual(await streamNames(fx.nc), before, "streams after the run");
  });

  it("bench --server: its workers get the credentials, every phase verifies, and it removes what it created", async () => {
    const before = await streamNames(fx.nc);
    const out = await runCli([
      "bench",
      "--server",
      fx.server.url,
      "--orders",
      "300",
      "--runs",
      "1",
      "--latency-seconds",
      "1",
      "--rate",
      "200",
      "--json",
      ...LOGIN,
    ]);
    assert.equal(out.code, 0, out.stderr);
    const phases = json(out).runs[0].phases as { phase: string; verification: { ok: boolean } }[];
    assert.deepEqual(
      phases.map((p) => [p.phase, p.verification.ok]),
      PHASES.map((phase) => [phase, true]),
    );
    assert.deepEqual(await streamNames(fx.nc), before, "streams after the run");
  });
});
