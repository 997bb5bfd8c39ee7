/**
 * The exactly-once pipeline end to end: `orderq produce` → `orderq work` → ledger, on real
 * nats-server processes that this suite starts (never the machine's shared server).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { countCommits, readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import { listDlq } from "../../src/core/ops/dlq-admin.js";
import { History, type HistoryEvent } from "../../src/core/pipeline/history.js";
import { DEFAULT_NAMES } from "../../src/core/nats/names.js";
import { makeOrder, MAX_ORDER_BYTES } from "../../src/core/pipeline/order.js";
import { Producer, type ProduceOptions } from "../../src/core/pipeline/producer.js";
import { seededRng } from "../../src/core/base/random.js";
import { NatsServer } from "../../src/core/fleet/nats-server.js";
import { ensureTopology, DEFAULT_SETTINGS } from "../../src/core/nats/topology.js";
import { spawn } from "node:child_process";
import { BIN, json, runCli, startCli } from "../support/cli.js";
import { useServer, type ServerFixture } from "../support/server.js";
import { descendants, isGone } from "../support/processes.js";
import { waitFor } from "../support/wait.js";
import { workArgs, type WorkOptions } from "../../src/core/fleet/work-args.js";

const names = DEFAULT_NAMES;
const FAST: WorkOptions = { settings: { ackWaitMs: 1000 }, backoffBaseMs: 20, backoffMaxMs: 200 };

async function streamMessages(fx: ServerFixture, stream = names.stream): Promise<number> {
  const jsm = await jetstreamManager(fx.nc);
  return (await jsm.streams.info(stream)).state.messages;
}

/** Asserts every id was committed exactly once and nothing else was. */
async function assertCommittedOnce(fx: ServerFixture, ids: string[]): Promise<void> {
  const commits = countCommits(await readLedgerWrites(fx.nc, names));
  const twice = [...commits].filter(([, n]) => n !== 1).map(([id]) => id);
  assert.deepEqual(twice, [], "orders committed more than once");
  const missing = ids.filter((id) => !commits.has(id));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} orders never committed`);
  assert.equal(commits.size, ids.length, "ledger holds orders nobody produced");
}

function acceptedIds(historyFile: string): string[] {
  const events = readFileSync(historyFile, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as HistoryEvent);
  return [...new Set(events.filter((e) => e.type === "ok").map((e) => e.id))];
}

/** A producer of one valid order (unless `count` says more), PubAck timeout 300 ms, recording to `history`. */
function oneOrderProducer(
  nc: NatsConnection,
  o: Pick<ProduceOptions, "retryForMs" | "idPrefix"> & Partial<ProduceOptions>,
  history: History,
): Producer {
  const options: ProduceOptions = {
    names,
    count: 1,
    rate: 0,
    sources: { web: 1 },
    poisonRate: 0,
    fatalRate: 0,
    crashRate: 0,
    invalidRate: 0,
    duplicateRate: 0,
    inFlight: 1,
    publishTimeoutMs: 300,
    ...o,
  };
  return new Producer(nc, options, seededRng(1), history);
}

describe("pipeline: produce → work → ledger", function () {
  const fx = useServer();
  const dir = mkdtempSync(join(tmpdir(), "orderq-test-"));

  it("commits 2,000 orders from three sources exactly once with --processes 3", async () => {
    const historyFile = join(dir, "h1.jsonl");
    const produced = await runCli(["produce", "--count", "2000", "--server", fx.server.url, "--history", historyFile, "--json"]);
    assert.equal(produced.code, 0, produced.stderr);
    assert.equal(json(produced).accepted, 2000);
    const invokes = readFileSync(historyFile, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as HistoryEvent);
    assert.deepEqual(
      new Set(invokes.filter((e) => e.type === "invoke").map((e) => (e as { source: string }).source)),
      new Set(["web", "mobile", "api"]),
    );

    const worked = await runCli(workArgs({ processes: 3, exitWhenIdleMs: 1000, server: fx.server.url, json: true }));
    assert.equal(worked.code, 0, worked.stderr);
    assert.equal(json(worked).committed, 2000);
    await assertCommittedOnce(fx, acceptedIds(historyFile));
    assert.equal(await streamMessages(fx), 0, "ORDERS should be empty");
  });
});

describe("pipeline: a worker killed with SIGKILL mid-run", function () {
  const fx = useServer();

  it("still commits every order exactly once after the worker is restarted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-test-"));
    const historyFile = join(dir, "h.jsonl");
    const produced = await runCli(["produce", "--count", "1500", "--server", fx.server.url, "--history", historyFile]);
    assert.equal(produced.code, 0, produced.stderr);
    const slow: WorkOptions = { handlerMs: 20, concurrency: 4, ...FAST, server: fx.server.url };
    // The victim works alone until it has committed some: with 1,450 orders still waiting it then
    // holds a full set in flight when it is killed (started side by side, the survivor could drain the
    // backlog on a loaded machine before the victim held an order, and the kill would prove nothing).
    const victim = startCli(workArgs({ ...slow, workerId: "victim" }));
    await waitFor(
      "the victim to be committing",
      async () => (await readLedgerWrites(fx.nc, names)).filter((w) => w.outcome.worker === "victim").length >= 50,
    );
    const survivor = startCli(workArgs({ ...slow, workerId: "survivor" }));
    victim.child.kill("SIGKILL");
    assert.equal((await victim.done).signal, "SIGKILL");
    const restarted = await runCli(workArgs({ ...slow, workerId: "restarted", exitWhenIdleMs: 2000, json: true }));
    assert.equal(restarted.code, 0, restarted.stderr);
    survivor.child.kill("SIGTERM");
    assert.equal((await survivor.done).code, 0, "SIGTERM is a graceful drain that exits 0");

    await assertCommittedOnce(fx, acceptedIds(historyFile));
    const writes = await readLedgerWrites(fx.nc, names);
    // The victim's orders come back with no failure recorded: suspects, committed by a quarantine lane.
    assert.ok(
      writes.some((w) => w.outcome.lane === "quarantine"),
      "the kill should have caused redeliveries, retried in the quarantine lane",
    );
    assert.equal(await streamMessages(fx), 0);
  });
});

describe("pipeline: publishing the same order more than once", function () {
  const fx = useServer();

  it("stores a re-sent order once and commits it once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-test-"));
    const historyFile = join(dir, "dup.jsonl");
    const produced = await runCli([
      "produce",
      "--count",
      "20",
      "--duplicate-rate",
      "1",
      "--server",
      fx.server.url,
      "--history",
      historyFile,
      "--json",
    ]);
    assert.equal(produced.code, 0, produced.stderr);
    const stats = json(produced);
    assert.equal(stats.published, 40);
    assert.equal(stats.duplicates, 20);
    const oks = readFileSync(historyFile, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as HistoryEvent)
      .filter((e) => e.type === "ok");
    assert.equal(oks.filter((e) => e.type === "ok" && e.duplicate).length, 20, "every second PubAck says duplicate: true");
    assert.equal(await streamMessages(fx), 20);
    const worked = await runCli(workArgs({ exitWhenIdleMs: 1000, server: fx.server.url, json: true }));
    assert.equal(json(worked).committed, 20);
    await assertCommittedOnce(fx, acceptedIds(historyFile));
  });

  it("retries a publish that timed out with the same id: stored once, committed once", async () => {
    // A server of its own: it is paused so the first PubAck never arrives in time.
    const server = await NatsServer.start();
    const nc = await connect({ servers: server.url });
    try {
      await ensureTopology(nc, DEFAULT_SETTINGS);
      const history = new History();
      const producer = oneOrderProducer(nc, { retryForMs: 30_000, idPrefix: "retry" }, history);
      await server.pause();
      const run = producer.run();
      await new Promise((r) => setTimeout(r, 1200));
      server.resume();
      const stats = await run;
      assert.ok(stats.retries >= 1, "the publish should have timed out at least once");
      assert.equal(stats.accepted, 1);
      const ok = history.events.find((e) => e.type === "ok");
      assert.ok(ok && ok.type === "ok" && ok.tries > 1);
      const jsm = await jetstreamManager(nc);
      assert.equal((await jsm.streams.info(names.stream)).state.messages, 1, "one stored message for all the tries");
      const worked = await runCli(workArgs({ exitWhenIdleMs: 1000, server: server.url, json: true }));
      assert.equal(json(worked).committed, 1);
      assert.deepEqual([...countCommits(await readLedgerWrites(nc, names))], [["retry-000000", 1]]);
    } finally {
      await nc.close();
      await server.dispose();
    }
  });

  it("stops and rethrows when its history sink fails, after the publishes in flight are done, without re-sending", async () => {
    const server = await NatsServer.start();
    const nc = await connect({ servers: server.url });
    try {
      await ensureTopology(nc, DEFAULT_SETTINGS);
      class FailingSink extends History {
        override record(event: HistoryEvent): void {
          super.record(event);
          if (event.type === "ok") throw new Error("history disk full");
        }
      }
      const sink = new FailingSink();
      const producer = oneOrderProducer(nc, { retryForMs: 30_000, idPrefix: "sink", count: 50, inFlight: 4 }, sink);
      await assert.rejects(producer.run(), /history disk full/);
      const invoked = sink.events.filter((e) => e.type === "invoke").length;
      assert.ok(invoked < 50, `it stopped early (${invoked} of 50 started)`);
      assert.equal(producer.stats.retries, 0, "an accepted publish is not retried because the sink failed");
      assert.equal(producer.stats.accepted, invoked, "every publish it started was answered before it returned");
      const jsm = await jetstreamManager(nc);
      assert.equal((await jsm.streams.info(names.stream)).state.messages, invoked, "each stored once");
    } finally {
      await nc.close();
      await server.dispose();
    }
  });

  it("gives up on a publish: failed when no stream listens, indeterminate when the server went silent", async () => {
    const server = await NatsServer.start();
    const nc = await connect({ servers: server.url });
    try {
      // No stream yet: every try is answered "no responders", which proves the order was not stored.
      const refused = new History();
      const noStream = await oneOrderProducer(nc, { retryForMs: 500, idPrefix: "nostream" }, refused).run();
      assert.deepEqual([noStream.accepted, noStream.failed, noStream.indeterminate], [0, 1, 0]);
      assert.match(JSON.stringify(refused.events.find((e) => e.type === "fail")), /no responders/);

      await ensureTopology(nc, DEFAULT_SETTINGS);
      await server.pause();
      try {
        // A PubAck that never came: the order may have been stored.
        const silent = await oneOrderProducer(nc, { retryForMs: 500, idPrefix: "silent" }, new History()).run();
        assert.deepEqual([silent.accepted, silent.failed, silent.indeterminate], [0, 0, 1]);
      } finally {
        server.resume();
      }
    } finally {
      await nc.close();
      await server.dispose();
    }
  });
});

describe("pipeline: invalid payloads", function () {
  const fx = useServer();

  it("dead-letters each malformed payload with a reason and leaves the others alone", async () => {
    await ensureTopology(fx.nc, DEFAULT_SETTINGS);
    const js = jetstream(fx.nc);
    const now = new Date().toISOString();
    const invalid: Record<string, string> = {
      "bad-json": "{this is not json",
      "bad-noid": JSON.stringify({ source: "web", items: [{ sku: "a", qty: 1, price: 1 }], amount: 1, createdAt: now }),
      "bad-types": JSON.stringify({ id: "bad-types", source: "web", items: "many", amount: "ten", createdAt: 7 }),
      "bad-huge": JSON.stringify({
        id: "bad-huge",
        source: "web",
        items: [{ sku: "x".repeat(MAX_ORDER_BYTES), qty: 1, price: 1 }],
        amount: 1,
        createdAt: now,
      }),
    };
    for (const [msgID, payload] of Object.entries(invalid)) await js.publish("orders.web", payload, { msgID });
    const good = Array.from({ length: 30 }, (_, i) => makeOrder(`good-${i}`, "api", seededRng(i)));
    for (const order of good) await js.publish("orders.api", JSON.stringify(order), { msgID: order.id });

    const worked = await runCli(workArgs({ exitWhenIdleMs: 1000, server: fx.server.url, json: true }));
    assert.equal(worked.code, 0, worked.stderr);
    assert.equal(json(worked).invalid, 4);

    const dlq = await listDlq(fx.nc, names);
    assert.equal(dlq.length, 4);
    const byMsgId = new Map(dlq.map((e) => [e.originalHeaders["Nats-Msg-Id"]?.[0], e]));
    assert.match(byMsgId.get("bad-json")!.lastError, /^invalid-payload: not JSON/);
    assert.match(byMsgId.get("bad-noid")!.lastError, /^invalid-payload: id:/);
    assert.match(byMsgId.get("bad-types")!.lastError, /^invalid-payload: items:/);
    assert.match(byMsgId.get("bad-huge")!.lastError, /^invalid-payload: payload is \d+ bytes/);
    for (const entry of dlq) {
      assert.equal(entry.reason, "invalid-payload");
      assert.equal(entry.deliveries, 1, "not retried");
    }
    assert.equal(byMsgId.get("bad-types")!.orderId, "bad-types", "a best-effort id is kept for people");
    await assertCommittedOnce(
      fx,
      good.map((o) => o.id),
    );
    assert.equal(await streamMessages(fx), 0);
  });
});

describe("pipeline: the negative control (--unsafe)", function () {
  const fx = useServer();

  it("with a plain put and workers killed between commit and ack, the ledger shows duplicates", async () => {
    const produced = await runCli(["produce", "--count", "200", "--server", fx.server.url]);
    assert.equal(produced.code, 0, produced.stderr);
    const worked = await runCli(
      workArgs({ unsafe: true, processes: 2, crashAfterCommitRate: 0.05, concurrency: 8, exitWhenIdleMs: 2000, ...FAST, server: fx.server.url }),
    );
    assert.equal(worked.code, 0, worked.stderr);
    const commits = countCommits(await readLedgerWrites(fx.nc, names));
    assert.equal(commits.size, 200, "nothing lost");
    const duplicated = [...commits].filter(([, n]) => n > 1);
    assert.ok(duplicated.length > 0, "the unsafe commit must let a redelivery write again");
  });

  it("the same faults without --unsafe commit every order exactly once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-test-"));
    const historyFile = join(dir, "safe.jsonl");
    await runCli(["produce", "--count", "200", "--id-prefix", "safe", "--server", fx.server.url, "--history", historyFile]);
    const before = countCommits(await readLedgerWrites(fx.nc, names));
    const worked = await runCli(
      workArgs({ processes: 2, crashAfterCommitRate: 0.05, concurrency: 8, exitWhenIdleMs: 2000, ...FAST, server: fx.server.url, json: true }),
    );
    assert.equal(worked.code, 0, worked.stderr);
    // Each crash leaves a committed, unacked order: its redelivery must be absorbed by the ledger.
    assert.ok(json(worked).suppressedDuplicates > 0, "crashes should have caused redeliveries of committed work");
    const writes = (await readLedgerWrites(fx.nc, names)).filter((w) => w.orderId.startsWith("safe-"));
    const commits = countCommits(writes);
    assert.equal(commits.size, 200);
    assert.deepEqual(
      [...commits].filter(([, n]) => n > 1),
      [],
    );
    assert.ok(before.size > 0 && [...commits.keys()].every((id) => !before.has(id)));
  });
});

describe("pipeline: failures are one clear line and a non-zero exit", function () {
  const fx = useServer();

  const oneLine = (stderr: string) => {
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
    return lines[0];
  };

  it("rejects bad flags with exit 2, naming the flag", async () => {
    const cases: [string[], RegExp][] = [
      [["work", "--concurrency", "0"], /--concurrency/],
      [["work", "--bogus"], /Nonexistent flag: --bogus/],
      [["work", "--ack-wait", "soon"], /--ack-wait: "soon" is not a duration/],
      [["produce", "--sources", "web=1,fax=2"], /--sources: unknown source "fax"/],
      [["produce", "--poison-rate", "2"], /--poison-rate: "2" is not a probability/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli([...args, "--server", fx.server.url]);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(oneLine(result.stderr), message);
    }
  });

  it("fails fast with exit 3 when the server is unreachable", async () => {
    const down = await NatsServer.start();
    const url = down.url;
    await down.dispose(); // a port where nothing listens now
    for (const args of [["status"], ["produce", "--count", "1"], ["work"], ["topology", "ensure"]]) {
      const result = await runCli([...args, "--server", url]);
      assert.equal(result.code, 3, `${args.join(" ")}: ${result.stderr}`);
      assert.match(oneLine(result.stderr), /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/);
    }
  });

  it("refuses a conflicting stream or consumer config, naming the field and both values", async () => {
    assert.equal((await runCli(["topology", "ensure", "--server", fx.server.url])).code, 0);
    const consumer = await runCli(["topology", "ensure", "--ack-wait", "5s", "--server", fx.server.url]);
    assert.equal(consumer.code, 3);
    assert.match(oneLine(consumer.stderr), /consumer ORDERS\/workers exists with a different config: ack_wait is 10s, wanted 5s/);
    const stream = await runCli(["topology", "ensure", "--dup-window", "1m", "--server", fx.server.url, "--json"]);
    assert.equal(stream.code, 3);
    assert.match(json(stream).error.message, /stream ORDERS exists with a different config: duplicate_window is 2m, wanted 1m/);
    const updated = await runCli(["topology", "ensure", "--dup-window", "1m", "--update", "--server", fx.server.url, "--json"]);
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal(json(updated).resources.find((r: { name: string }) => r.name === "ORDERS").action, "updated");
    // produce and work use what exists as it is: no fight with the operator's settings.
    const produced = await runCli(["produce", "--count", "1", "--ack-wait", "3s", "--server", fx.server.url]);
    assert.equal(produced.code, 0, produced.stderr);
  });

  it("every command has --help with an example", async () => {
    for (const cmd of [["produce"], ["work"], ["status"], ["topology", "ensure"], ["topology", "show"], ["server", "start"]]) {
      const help = await runCli([...cmd, "--help"]);
      assert.equal(help.code, 0, cmd.join(" "));
      assert.match(help.stdout, /EXAMPLES\s+\$ orderq /, `${cmd.join(" ")} --help has no example`);
      assert.match(help.stdout, /--json/);
    }
  });
});

describe("pipeline: handlers slower than the ack wait, and shutdown", function () {
  const fx = useServer();

  it("keeps the lease of every order it holds: none is redelivered while a slow handler runs", async () => {
    const produced = await runCli(["produce", "--count", "8", "--id-prefix", "slow", "--ack-wait", "1s", "--server", fx.server.url]);
    assert.equal(produced.code, 0, produced.stderr);
    // Each handler takes 1.5 ack waits; with 2 in flight the later orders wait for 4+ ack waits.
    const worked = await runCli(workArgs({ concurrency: 2, handlerMs: 1500, exitWhenIdleMs: 1000, server: fx.server.url, json: true }));
    assert.equal(worked.code, 0, worked.stderr);
    const stats = json(worked);
    assert.equal(stats.committed, 8);
    assert.equal(stats.suppressedDuplicates, 0, "no order's handler ran twice");
    const writes = (await readLedgerWrites(fx.nc, names)).filter((w) => w.orderId.startsWith("slow-"));
    assert.deepEqual(
      writes.map((w) => w.outcome.attempt),
      new Array(8).fill(1),
      "every order committed on its first delivery",
    );
  });

  it("drains on Ctrl-C to the whole process group under a supervisor: exit 0, nothing abandoned", async () => {
    const produced = await runCli(["produce", "--count", "400", "--id-prefix", "ctrlc", "--server", fx.server.url]);
    assert.equal(produced.code, 0, produced.stderr);
    // Its own process group, as a terminal would make it, so SIGINT reaches the supervisor and its workers.
    const child = spawn(process.execPath, [BIN, ...workArgs({ processes: 2, concurrency: 4, handlerMs: 50, server: fx.server.url, json: true })], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    await waitFor("some commits", async () => countCommits(await readLedgerWrites(fx.nc, names)).size >= 40);
    process.kill(-child.pid!, "SIGINT");
    assert.equal(await exited, 0, stderr);
    const stats = JSON.parse(stdout);
    const commits = countCommits((await readLedgerWrites(fx.nc, names)).filter((w) => w.orderId.startsWith("ctrlc-")));
    assert.equal(stats.committed, commits.size, "every order the workers took was finished before they exited");
    assert.deepEqual(
      [...commits.values()].filter((n) => n !== 1),
      [],
    );
    const consumer = await (await jetstreamManager(fx.nc)).consumers.info(names.stream, names.consumer);
    assert.equal(consumer.num_ack_pending, 0, "no order left delivered and unacked");
    assert.equal(consumer.num_redelivered, 0, "nothing was handed back to be redelivered");
  });

  it("a second Ctrl-C ends the supervisor at once (exit 130) and its workers still finish what they hold", async () => {
    const produced = await runCli(["produce", "--count", "200", "--id-prefix", "twice", "--server", fx.server.url]);
    assert.equal(produced.code, 0, produced.stderr);
    const commitsBefore = (await readLedgerWrites(fx.nc, names)).length; // the stream may still hold the test above's orders
    // Slow handlers, so the workers are still draining when the second signal comes.
    const child = spawn(process.execPath, [BIN, ...workArgs({ processes: 2, concurrency: 4, handlerMs: 1500, server: fx.server.url })], {
      detached: true,
      stdio: "ignore",
      env: { ...process.env, NO_COLOR: "1" },
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    let workers: number[] = [];
    try {
      await waitFor("some commits", async () => (await readLedgerWrites(fx.nc, names)).length >= commitsBefore + 8);
      workers = descendants(child.pid!);
      assert.equal(workers.length, 3, "two worker processes and the quarantine lane's");
      process.kill(-child.pid!, "SIGINT");
      await new Promise((r) => setTimeout(r, 200));
      process.kill(-child.pid!, "SIGINT");
      assert.equal(await exited, 130);
      await waitFor("the workers to finish and exit", () => workers.every(isGone), 30_000);
    } finally {
      for (const pid of [child.pid!, ...workers]) if (!isGone(pid)) process.kill(pid, "SIGKILL"); // a failed test leaves nothing running
    }
    const commits = countCommits(await readLedgerWrites(fx.nc, names));
    assert.deepEqual(
      [...commits.values()].filter((n) => n !== 1),
      [],
    );
    const consumer = await (await jetstreamManager(fx.nc)).consumers.info(names.stream, names.consumer);
    assert.equal(consumer.num_ack_pending, 0, "no order left delivered and unacked: the workers were not killed mid-order");
  });
});

describe("status", function () {
  const fx = useServer();

  it("--json reports depth, lag, DLQ by reason and ledger size, as they are", async () => {
    const produce = async (args: string[]) => {
      const out = await runCli(["produce", ...args, "--server", fx.server.url]);
      assert.equal(out.code, 0, out.stderr);
    };
    await produce(["--count", "10", "--id-prefix", "ok"]);
    await produce(["--count", "3", "--invalid-rate", "1", "--id-prefix", "bad"]);
    await produce(["--count", "2", "--fatal-rate", "1", "--id-prefix", "fatal"]);
    const worked = await runCli(workArgs({ exitWhenIdleMs: 1000, server: fx.server.url }));
    assert.equal(worked.code, 0, worked.stderr);
    await produce(["--count", "4", "--id-prefix", "later"]); // left for the lag

    const status = await runCli(["status", "--server", fx.server.url, "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const s = json(status);
    assert.equal(s.stream.name, "ORDERS");
    assert.equal(s.stream.messages, 4);
    assert.deepEqual([s.consumer.pending, s.consumer.ackPending, s.consumer.lag], [4, 0, 4]);
    assert.equal(s.dlq.depth, 5);
    assert.deepEqual(s.dlq.byReason, { "invalid-payload": 3, "non-retryable": 2, "max-deliveries": 0, "crashed-worker": 0 });
    assert.equal(s.dlq.foreign, 0);
    // The fatal orders' keys hold their dead-letter claims: 10 commits + 2 claims; the 3 invalid
    // payloads are claimed under keys of their own, which are no orders.
    assert.deepEqual([s.ledger.orders, s.ledger.writes, s.ledger.payloadClaims], [12, 12, 3]);
    assert.equal(s.advisoriesWaiting, 0);
  });
});
