/**
 * `orderq work --autoscale` against a real server: a backlog one slow worker cannot clear makes the
 * supervisor add workers, the backlog drains, the pool shrinks back to --min, and every order is
 * committed exactly once. The Prometheus endpoint is scraped during the run.
 */
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../../src/core/chaos/checker.js";
import { listDlq } from "../../src/core/ops/dlq-admin.js";
import { readHistoryFile } from "../../src/core/pipeline/history.js";
import { countCommits, readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import { DEFAULT_NAMES } from "../../src/core/nats/names.js";
import { freePort } from "../../src/core/fleet/nats-server.js";
import { json, runCli, startCli } from "../support/cli.js";
import { useServer } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { scrape, sumSeries } from "../support/metrics.js";
import { workArgs } from "../../src/core/fleet/work-args.js";

const ORDERS = Number(process.env.ORDERQ_AUTOSCALE_ORDERS ?? 3000);

describe("autoscaling workers", function () {
  const fx = useServer();

  it("scales up for a backlog, drains it, scales back to --min, and commits each order once", async () => {
    const historyFile = join(mkdtempSync(join(tmpdir(), "orderq-autoscale-")), "history.jsonl");
    const produced = await runCli(["produce", "--count", String(ORDERS), "--history", historyFile, "--server", fx.server.url, "--json"]);
    assert.equal(json(produced).accepted, ORDERS);
    const port = await freePort();
    const work = startCli(
      workArgs({
        autoscale: { min: 1, max: 6, sampleMs: 500, cooldownMs: 1000, targetLagSeconds: 3 },
        handlerMs: 20,
        concurrency: 4,
        exitWhenIdleMs: 6000,
        metricsPort: port,
        server: fx.server.url,
        json: true,
      }),
    );

    try {
      await checkRun(port, work, fx.nc, historyFile);
    } finally {
      work.child.kill("SIGKILL"); // only if an assertion failed before it exited
    }
  });
});

async function checkRun(port: number, work: ReturnType<typeof startCli>, nc: NatsConnection, historyFile: string): Promise<void> {
  const during = await waitFor("a scrape showing more than one worker, with their metrics", async () => {
    const m = await scrape(port);
    return (m.get("orderq_workers") ?? 0) > 1 && m.has("orderq_processing_seconds_count") ? m : undefined;
  });
  assert.ok(during.get("orderq_consumer_lag")! > 0, "scaled up while there was a backlog");
  assert.ok(during.has('orderq_processing_seconds_bucket{le="0.025"}'), "latency histogram exposed");

  await waitFor("every order committed", async () => countCommits(await readLedgerWrites(nc, DEFAULT_NAMES)).size === ORDERS, 120_000, 1000);
  const end = await waitFor("counters to catch up with the ledger", async () => {
    const m = await scrape(port);
    return sumSeries(m, "orderq_orders_committed_total") === ORDERS ? m : undefined;
  });
  assert.equal(end.get("orderq_consumer_lag"), 0);
  assert.equal(end.get('orderq_dlq_depth{reason="invalid-payload"}'), 0, "the DLQ depth gauge is served, by reason");
  assert.equal(end.get("orderq_processing_seconds_count"), ORDERS);

  const result = await work.done;
  assert.equal(result.code, 0, result.stderr);
  const stats = json(result);
  const ups = stats.scaling.filter((e: { to: number; from: number }) => e.to > e.from);
  const downs = stats.scaling.filter((e: { to: number; from: number }) => e.to < e.from);
  assert.ok(ups.length > 0, "never scaled up");
  assert.ok(downs.length > 0, "never scaled down");
  assert.equal(stats.scaling.at(-1).to, 1, "back to --min once the backlog was gone");
  for (const e of stats.scaling) assert.match(e.reason, /lag \d+, \d+ orders\/s/);

  // The chaos checker's verdict over the producer's history, every ledger write and the DLQ.
  const ledger = await readLedgerWrites(nc, DEFAULT_NAMES);
  const verdict = check({
    history: readHistoryFile(historyFile),
    ledger,
    dlq: (await listDlq(nc, DEFAULT_NAMES)).map((e) => ({ msgId: e.originalHeaders["Nats-Msg-Id"]?.[0], orderId: e.orderId })),
    remaining: [],
    expect: { dlq: "only-marked", minFaults: 0, minRedeliveries: 0, faultsMustHaveEffect: false },
    observed: { faults: 0, redeliveries: 0, effects: 0, quiet: true },
  });
  assert.equal(verdict.valid, true, JSON.stringify(verdict.categories));
  assert.equal(verdict.categories.ok.count, ORDERS);
  assert.deepEqual(
    [...countCommits(ledger).values()].filter((n) => n !== 1),
    [],
  );
  assert.equal(stats.committed, ORDERS);
}
