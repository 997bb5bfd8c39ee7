/**
 * `orderq work` under a supervisor, given its input as a user types it: `-p3` starts three workers and
 * no more; a worker that refuses its input stops the supervisor with exit 2 and the worker's line; a bad
 * flag is refused before anything connects. The parsing itself is covered by test/unit/work-flags.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { json, runCli, startCli } from "../support/cli.js";
import { descendants } from "../support/processes.js";
import { useServer } from "../support/server.js";

describe("orderq work: input under a supervisor", function () {
  this.timeout(60_000);
  const fx = useServer();

  it("-p3 runs exactly three worker processes and the quarantine lane, none of them a supervisor", async () => {
    const produced = await runCli(["produce", "--count", "30", "--server", fx.server.url]);
    assert.equal(produced.code, 0, produced.stderr);
    const run = startCli(["work", "-p3", "--exit-when-idle", "1s", "--server", fx.server.url, "--json"]);
    // The most processes seen below the command while it runs; the bug this guards made 14 in 5 s.
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, descendants(run.child.pid!).length)), 100);
    const result = await run.done;
    clearInterval(sampler);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(json(result).committed, 30);
    assert.ok(most <= 4, `${most} processes below orderq work -p3 (3 workers and the quarantine lane expected)`);
  });

  it("a worker that exits 2 is not replaced: the supervisor stops the others and exits 2 with its line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-input-"));
    const handler = join(dir, "refuses.mjs");
    // Loads in the supervisor (which checks the module) but not in a worker process.
    writeFileSync(handler, 'if (process.env.ORDERQ_SUPERVISED === "1") throw new Error("not in a worker");\nexport default async () => {};\n');
    const run = startCli(["work", "-p", "2", "--handler", handler, "--server", fx.server.url]);
    const result = await run.done;
    assert.equal(result.code, 2, result.stderr);
    const last = result.stderr.trim().split("\n").pop() ?? "";
    assert.match(
      last,
      /^orderq: (worker w[12]|quarantine lane q1) refused its input \(exit 2\): --handler .*refuses\.mjs: the module failed to load: not in a worker$/,
    );
    assert.doesNotMatch(result.stderr, /starting a replacement/);
  });

  it("--autoscale --cooldown -1s exits 2 before anything connects or starts", async () => {
    const result = await runCli(["work", "--autoscale", "--cooldown", "-1s", "--stream", "NEVER_MADE", "--server", fx.server.url]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim(), 'orderq: --cooldown: "-1s" is not a duration (write e.g. 500ms, 2s, 1m, 7d)');
    const jsm = await jetstreamManager(fx.nc);
    await assert.rejects(jsm.streams.info("NEVER_MADE"), /stream not found/, "the command reached the server");
  });

  it("--inbox-batch / --inbox-pool / --inbox-table with no inbox exit 2 with one line before anything connects; their defaults do not", async () => {
    for (const flag of ["--inbox-batch=4", "--inbox-pool", "--inbox-table"]) {
      const args = flag.includes("=") ? [flag] : [flag, flag === "--inbox-pool" ? "3" : "orders_inbox"];
      const result = await runCli(["work", ...args, "--stream", "NEVER_MADE_INBOX", "--server", fx.server.url]);
      assert.equal(result.code, 2, result.stderr);
      const name = flag.replace(/=.*/, "");
      assert.equal(result.stderr.trim(), `orderq: ${name} needs an inbox: --inbox or ORDERQ_INBOX_URL`);
    }
    const jsm = await jetstreamManager(fx.nc);
    await assert.rejects(jsm.streams.info("NEVER_MADE_INBOX"), /stream not found/, "the command reached the server");

    const bench = await runCli(["bench", "--inbox-batch", "4", "--runs", "1"]);
    assert.equal(bench.code, 2, bench.stderr);
    assert.equal(bench.stderr.trim(), "orderq: --inbox-batch needs --inbox (it tunes the bench's inbox runs)");

    // Not given, the defaults are no reason to refuse.
    const plain = await runCli(["work", "--exit-when-idle", "500ms", "--server", fx.server.url, "--json"]);
    assert.equal(plain.code, 0, plain.stderr);
  });

  it("--inbox-table with no inbox: every other command that reads an inbox refuses it too, exit 2, before anything connects", async () => {
    for (const command of [["order", "web-1"], ["status"], ["intake"], ["dlq", "replay", "--all"], ["topology", "ensure"]]) {
      const result = await runCli([...command, "--inbox-table", "orders_inbox", "--stream", "NEVER_MADE_TABLE", "--server", fx.server.url]);
      assert.equal(result.code, 2, `${command.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim(), "orderq: --inbox-table needs an inbox: --inbox or ORDERQ_INBOX_URL", command.join(" "));
    }
    const jsm = await jetstreamManager(fx.nc);
    await assert.rejects(jsm.streams.info("NEVER_MADE_TABLE"), /stream not found/, "topology ensure reached the server");
  });
});
