/**
 * The operator's DLQ tools against a real nats-server, run as a user would: `dlq purge --dry-run`
 * (the same selection as a purge, nothing deleted) and `dlq replay --rate` stopped by Ctrl-C (the
 * entries not reached stay in the DLQ, exit 130).
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { encodeDlqHeaders, type DlqEntry } from "../../src/core/pipeline/dlq-entry.js";
import { DEFAULT_NAMES, dlqSubject, namesFor, type Names } from "../../src/core/nats/names.js";
import { makeOrder } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { json, runCli, startCli, type CliResult } from "../support/cli.js";
import { useServer, type ServerFixture } from "../support/server.js";

const names = DEFAULT_NAMES;
const DAY = 86_400_000;

function cli(fx: ServerFixture, args: string[]): Promise<CliResult> {
  return runCli(args, { NATS_URL: fx.server.url });
}

/** Writes DLQ entries through the codec, as the worker would; returns their DLQ sequences by order id. */
async function seed(
  fx: ServerFixture,
  entries: { orderId: string; reason: DlqEntry["reason"]; ageMs: number }[],
  names: Names = DEFAULT_NAMES,
): Promise<Map<string, number>> {
  const topo = await cli(fx, ["topology", "ensure", "--stream", names.stream, "--json"]);
  assert.equal(topo.code, 0, topo.stderr);
  const js = jetstream(fx.nc);
  const seqOf = new Map<string, number>();
  for (const [i, s] of entries.entries()) {
    const at = new Date(Date.now() - s.ageMs).toISOString();
    const e: DlqEntry = {
      reason: s.reason,
      lastError: "rejected (poison)",
      orderId: s.orderId,
      source: "web",
      originalStream: names.stream,
      originalSubject: `${names.subjectPrefix}.web`,
      originalSeq: i + 1,
      originalHeaders: { "Nats-Msg-Id": [s.orderId] },
      consumer: "workers",
      deliveries: 3,
      attempts: [],
      deadLetteredAt: at,
    };
    const payload = JSON.stringify(makeOrder(s.orderId, "web", seededRng(i)));
    const ack = await js.publish(dlqSubject(names, "web"), payload, { headers: encodeDlqHeaders(e) });
    seqOf.set(s.orderId, ack.seq);
  }
  return seqOf;
}

async function depth(fx: ServerFixture, dlqStream = names.dlqStream): Promise<number> {
  return (await (await jetstreamManager(fx.nc)).streams.info(dlqStream)).state.messages;
}

describe("DLQ purge --dry-run", function () {
  const fx = useServer();
  let seqOf: Map<string, number>;

  before(async () => {
    seqOf = await seed(fx, [
      { orderId: "old-1", reason: "max-deliveries", ageMs: 10 * DAY },
      { orderId: "old-2", reason: "non-retryable", ageMs: 9 * DAY },
      { orderId: "new-1", reason: "max-deliveries", ageMs: 60_000 },
    ]);
  });

  it("lists exactly what the same purge would delete, deletes nothing, exit 0, without --yes or a terminal", async () => {
    const dry = await cli(fx, ["dlq", "purge", "--older-than", "7d", "--dry-run", "--json"]);
    assert.equal(dry.code, 0, dry.stderr);
    const report = json(dry);
    assert.equal(report.dryRun, true);
    assert.equal(report.selected, 2);
    assert.equal(report.purged, 0);
    assert.deepEqual(
      report.entries.map((e: { orderId: string }) => e.orderId),
      ["old-1", "old-2"],
    );
    assert.equal(await depth(fx), 3, "nothing deleted");

    const human = await cli(fx, ["dlq", "purge", `seq:${seqOf.get("new-1")}`, "old-1", "--dry-run"]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /Would purge 2 entries \(max-deliveries 2\) from ORDERS_DLQ\. Dry run: nothing was deleted\./);
    assert.match(human.stdout, /new-1/);
    assert.equal(await depth(fx), 3, "nothing deleted");

    // The real purge of the same selection deletes exactly what the dry run listed.
    const real = json(await cli(fx, ["dlq", "purge", "--older-than", "7d", "--yes", "--json"]));
    assert.deepEqual(real.entries, report.entries);
    assert.equal(real.purged, 2);
    assert.equal(await depth(fx), 1);
  });

  it("rejects a bad selection before anything is read, as a purge does", async () => {
    const r = await cli(fx, ["dlq", "purge", "--dry-run"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /nothing selected/);
  });
});

describe("DLQ replay --rate, stopped by Ctrl-C", function () {
  const fx = useServer();
  const ORDERS = 6;

  it("finishes the entry in progress, leaves the rest in the DLQ, says how many, exits 130", async () => {
    const seqOf = await seed(
      fx,
      Array.from({ length: ORDERS }, (_, i) => ({ orderId: `r-${i}`, reason: "max-deliveries" as const, ageMs: 60_000 })),
    );
    const seqs = [...seqOf.values()];
    // One entry a second: the signal lands long before the last one is due.
    const run = startCli(["dlq", "replay", "--all", "--rate", "1", "--json"], { NATS_URL: fx.server.url });
    while ((await depth(fx)) === ORDERS) await sleep(50);
    run.child.kill("SIGINT");
    const result = await run.done;
    assert.equal(result.code, 130, result.stderr);
    const report = json(result);
    assert.equal(report.interrupted, true);
    assert.ok(report.replayed >= 1 && report.left >= 1, `replayed ${report.replayed}, left ${report.left}`);
    assert.equal(report.replayed + report.refused + report.failed + report.left, ORDERS);
    assert.equal(report.results.length, ORDERS - report.left);
    assert.deepEqual(report.leftSeqs, seqs.slice(ORDERS - report.left), "the entries left are the last ones, by sequence");
    assert.equal(await depth(fx), report.left, "every entry not replayed is still in the DLQ; none is half-replayed");

    // The rest are replayed by running the same command again.
    const again = await cli(fx, ["dlq", "replay", "--all", "--json"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(json(again).replayed, report.left);
    assert.equal(await depth(fx), 0);
  });

  it("refuses a negative --rate before connecting", async () => {
    const r = await cli(fx, ["dlq", "replay", "--all", "--rate", "-1"]);
    assert.equal(r.code, 2, r.stderr);
  });
});

describe("DLQ tools under another --stream", function () {
  const fx = useServer();
  const foo = namesFor({ stream: "FOO", consumer: DEFAULT_NAMES.consumer, ledgerBucket: DEFAULT_NAMES.ledgerBucket });

  it("list, show, replay and purge read FOO's DLQ (FOO_DLQ, dlq.foo.>) with only --stream FOO, never ORDERS_DLQ", async () => {
    await seed(fx, [{ orderId: "default-1", reason: "max-deliveries", ageMs: 60_000 }]);
    const fooSeq = await seed(
      fx,
      [
        { orderId: "foo-1", reason: "max-deliveries", ageMs: 60_000 },
        { orderId: "foo-2", reason: "non-retryable", ageMs: 60_000 },
      ],
      foo,
    );
    assert.equal(foo.dlqStream, "FOO_DLQ");

    const listed = json(await cli(fx, ["dlq", "list", "--stream", "FOO", "--json"]));
    assert.equal(listed.stream, "FOO_DLQ");
    assert.deepEqual(
      listed.entries.map((e: { orderId: string }) => e.orderId),
      ["foo-1", "foo-2"],
    );
    const paged = json(await cli(fx, ["dlq", "list", "--stream", "FOO", "--limit", "1", "--json"]));
    assert.equal(paged.total, 2, "counted on FOO_DLQ's subjects");

    const shown = await cli(fx, ["dlq", "show", "--stream", "FOO", "foo-2", "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(json(shown).orderId, "foo-2");
    const other = await cli(fx, ["dlq", "show", "--stream", "FOO", "default-1"]);
    assert.equal(other.code, 2, "ORDERS' entry is not in FOO's DLQ");

    const replayed = await cli(fx, ["dlq", "replay", "--stream", "FOO", "foo-1", "--json"]);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.equal(json(replayed).replayed, 1);
    const fooOrders = await (await jetstreamManager(fx.nc)).streams.info("FOO");
    assert.equal(fooOrders.state.messages, 1, "replayed onto FOO's subject");

    const purged = await cli(fx, ["dlq", "purge", "--stream", "FOO", `seq:${fooSeq.get("foo-2")}`, "--yes", "--json"]);
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(await depth(fx, "FOO_DLQ"), 0);
    assert.equal(await depth(fx), 1, "ORDERS_DLQ untouched");
  });
});

describe("DLQ list --reason foreign", function () {
  const fx = useServer();

  it("lists only the messages orderq did not write, the rows `dlq list` marks foreign", async () => {
    const seqOf = await seed(fx, [{ orderId: "ours-1", reason: "max-deliveries", ageMs: 60_000 }]);
    const js = jetstream(fx.nc);
    const hdrs = headers();
    hdrs.set("X-Team", "payments");
    const first = (await js.publish(dlqSubject(names, "web"), "by hand", { headers: hdrs })).seq;
    const second = (await js.publish(dlqSubject(names, "api", "max-deliveries"), "also by hand")).seq;

    const all = json(await cli(fx, ["dlq", "list", "--json"]));
    assert.deepEqual(all.foreign, [first, second], "dlq list shows them as foreign rows");

    const r = await cli(fx, ["dlq", "list", "--reason", "foreign", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const listed = json(r);
    assert.deepEqual(listed.foreign, [first, second]);
    assert.deepEqual(listed.entries, [], `not ${seqOf.get("ours-1")}, an orderq entry`);
    assert.equal(listed.total, 0);
    const newest = json(await cli(fx, ["dlq", "list", "--reason", "foreign", "--limit", "1", "--json"]));
    assert.deepEqual(newest.foreign, [second]);

    const human = await cli(fx, ["dlq", "list", "--reason", "foreign"]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /2 foreign messages \(not written by orderq\)/);
    assert.doesNotMatch(human.stdout, /ours-1/);

    const withSource = await cli(fx, ["dlq", "list", "--reason", "foreign", "--source", "web"]);
    assert.equal(withSource.code, 2);
    assert.equal(withSource.stderr.trim().split("\n").length, 1, withSource.stderr);
    assert.match(withSource.stderr, /--reason foreign: a foreign message has no source/);
  });
});
