/**
 * The dead-letter queue against real nats-server processes: both paths into the DLQ (worker and
 * advisory-driven mover), exactly once each, and `orderq dlq list|show|replay|purge` run as a user would.
 */
import assert from "node:assert/strict";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { AttemptLog, type AttemptRecord } from "../../src/core/pipeline/attempts.js";
import { listDlq } from "../../src/core/ops/dlq-admin.js";
import { decodeDlqEntry, encodeDlqHeaders, MalformedDlqEntryError, type DlqEntry } from "../../src/core/pipeline/dlq-entry.js";
import { moveToDlq, type MaxDeliveriesAdvisory, type MoveResult } from "../../src/core/pipeline/dlq-mover.js";
import { countCommits, Ledger, readLedgerWrites, type LedgerWrite } from "../../src/core/pipeline/ledger.js";
import { DEFAULT_NAMES, dlqSubject, orderSubject } from "../../src/core/nats/names.js";
import { makeOrder, type Order, type Simulation } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { setTimeout as sleep } from "node:timers/promises";
import { json, runCli, type CliResult } from "../support/cli.js";
import { useServer, type ServerFixture } from "../support/server.js";
import { workArgs, type WorkOptions } from "../../src/core/fleet/work-args.js";

const names = DEFAULT_NAMES;
const MAX_DELIVER = 3;
/** Consumer settings that keep a test fast: crash detection in 1 s, quick retries. */
const TOPOLOGY = ["--ack-wait", "1s", "--max-deliver", String(MAX_DELIVER)];
const WORK: WorkOptions = { settings: { ackWaitMs: 1000, maxDeliver: MAX_DELIVER }, backoffBaseMs: 20, backoffMaxMs: 100 };

// ---------------------------------------------------------------------------------------------
// helpers

function cli(fx: ServerFixture, args: string[]): Promise<CliResult> {
  return runCli(args, { NATS_URL: fx.server.url });
}

/** Runs `orderq <args> --json`, expects exit 0, returns the parsed output. */
async function cliJson<T = any>(fx: ServerFixture, args: string[]): Promise<T> {
  const result = await cli(fx, [...args, "--json"]);
  assert.equal(result.code, 0, `orderq ${args.join(" ")} exited ${result.code}\n${result.stderr}${result.stdout}`);
  return json<T>(result);
}

/** Polls until `probe` returns a value (not undefined/false); fails naming what it waited for. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

function orders(prefix: string, count: number, special: Record<number, Simulation> = {}): Order[] {
  const rng = seededRng(7);
  const sources = ["web", "mobile", "api"] as const;
  return Array.from({ length: count }, (_, i) => makeOrder(`${prefix}-${i}`, sources[i % 3], rng, special[i]));
}

/** Publishes orders as the producer does (Nats-Msg-Id = order id); returns id → stream sequence. */
async function publish(nc: NatsConnection, list: Order[]): Promise<Map<string, number>> {
  const js = jetstream(nc);
  const seqs = new Map<string, number>();
  for (const o of list) {
    const ack = await js.publish(orderSubject(names, o.source), JSON.stringify(o), { msgID: o.id });
    seqs.set(o.id, ack.seq);
  }
  return seqs;
}

async function messages(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

function writesOf(writes: LedgerWrite[], orderId: string): LedgerWrite[] {
  return writes.filter((w) => w.orderId === orderId);
}

async function ensureTopology(fx: ServerFixture, args: string[] = TOPOLOGY): Promise<void> {
  await cliJson(fx, ["topology", "ensure", ...args]);
}

function entry(overrides: Partial<DlqEntry> = {}): DlqEntry {
  const attempt: AttemptRecord = {
    orderId: "o-1",
    streamSeq: 12,
    attempt: 1,
    worker: "w1",
    error: 'line one\nline "two"',
    errorClass: "PoisonOrderError",
    at: "2024-05-01T12:00:00.000Z",
  };
  return {
    reason: "max-deliveries",
    lastError: "order o-1 rejected on attempt 1 (poison)",
    orderId: "o-1",
    source: "web",
    originalStream: "ORDERS",
    originalSubject: "orders.web",
    originalSeq: 12,
    originalHeaders: { "Nats-Msg-Id": ["o-1"] },
    consumer: "workers",
    deliveries: 1,
    attempts: [attempt],
    firstAttemptAt: attempt.at,
    lastAttemptAt: attempt.at,
    deadLetteredAt: "2024-05-01T12:00:01.000Z",
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------

describe("DLQ entry codec", () => {
  it("round-trips every field through message headers", () => {
    const e = entry();
    const payload = new TextEncoder().encode('{"id":"o-1"}');
    const decoded = decodeDlqEntry(encodeDlqHeaders(e), payload, 3);
    assert.deepEqual(decoded, { ...e, dlqSeq: 3, payload });
  });

  it("round-trips an entry without order id or attempts", () => {
    const e = entry({ reason: "invalid-payload", orderId: undefined, attempts: [], firstAttemptAt: undefined, lastAttemptAt: undefined });
    const decoded = decodeDlqEntry(encodeDlqHeaders(e), new Uint8Array(), 1);
    assert.deepEqual(decoded, { ...e, dlqSeq: 1, payload: new Uint8Array() });
  });

  it("puts the copy's Nats-Msg-Id first, where nats-server 2.9 can find it", () => {
    // The original headers, stored as JSON in a later header value, mention Nats-Msg-Id too.
    const [first] = encodeDlqHeaders(entry(), "dlq:ORDERS:12");
    assert.deepEqual(first, ["Nats-Msg-Id", ["dlq:ORDERS:12"]]);
  });

  it("rejects a message that is not a DLQ entry, naming the missing header", () => {
    assert.throws(
      () => decodeDlqEntry(undefined, new Uint8Array(), 9),
      (err: Error) => err instanceof MalformedDlqEntryError && /Orderq-Reason/.test(err.message),
    );
  });
});

describe("DLQ: poison orders and replay", function () {
  const fx = useServer();
  // 20 orders; three poison (retryable every time) and one fatal (non-retryable), among healthy ones.
  const list = orders("p", 20, { 3: "poison", 9: "poison", 15: "poison", 12: "fatal" });
  const poison = list.filter((o) => o.simulate === "poison").map((o) => o.id);
  const fatal = list.find((o) => o.simulate === "fatal")!.id;
  const healthy = list.filter((o) => !o.simulate).map((o) => o.id);

  before(async function () {
    await ensureTopology(fx);
    await publish(fx.nc, list);
    // The first poison order once more, as a producer retrying after the duplicate window would:
    // a second stream message with the same order id must not become a second DLQ entry.
    const again = list.find((o) => o.id === poison[0])!;
    await jetstream(fx.nc).publish(orderSubject(names, again.source), JSON.stringify(again), { msgID: `${again.id}:resent` });
    const stats = await cliJson(fx, workArgs({ ...WORK, concurrency: 8, exitWhenIdleMs: 1000 }));
    assert.equal(stats.deadLettered, poison.length + 1);
  });

  it("dead-letters each poison order exactly once after exactly max_deliver attempts, with every error", async () => {
    const listed = await cliJson(fx, ["dlq", "list"]);
    assert.equal(listed.total, poison.length + 1);
    assert.deepEqual(listed.byReason, { "invalid-payload": 0, "non-retryable": 1, "max-deliveries": poison.length, "crashed-worker": 0 });
    for (const id of poison) {
      const mine = listed.entries.filter((e: { orderId: string }) => e.orderId === id);
      assert.equal(mine.length, 1, `${id} has ${mine.length} DLQ entries`);
      assert.equal(mine[0].reason, "max-deliveries");
      assert.equal(mine[0].deliveries, MAX_DELIVER);
      assert.equal(mine[0].attemptsRecorded, MAX_DELIVER);

      const shown = await cliJson(fx, ["dlq", "show", id]);
      assert.deepEqual(
        shown.attempts.map((a: AttemptRecord) => a.attempt),
        [1, 2, 3],
      );
      for (const a of shown.attempts as AttemptRecord[]) {
        assert.equal(a.errorClass, "PoisonOrderError");
        assert.match(a.error, new RegExp(`order ${id} rejected on attempt ${a.attempt} \\(poison\\)`));
      }
      assert.match(shown.lastError, /attempt 3 \(poison\)/);
      assert.equal(shown.payloadIsJson, true);
      assert.equal(shown.payload.id, id);
    }
    const f = listed.entries.find((e: { orderId: string }) => e.orderId === fatal);
    assert.equal(f.reason, "non-retryable");
    assert.equal(f.deliveries, 1, "a non-retryable error is not retried");
  });

  it("commits the healthy orders around them exactly once and never dead-letters them", async () => {
    const writes = await readLedgerWrites(fx.nc, names);
    const commits = countCommits(writes);
    for (const id of healthy) {
      assert.equal(commits.get(id), 1, `${id} committed ${commits.get(id) ?? 0} times`);
      assert.equal(writesOf(writes, id).length, 1, `${id} has a second ledger write`);
    }
    for (const id of [...poison, fatal]) {
      assert.deepEqual(
        writesOf(writes, id).map((w) => w.outcome.result),
        ["dead-lettered"],
        `${id}: one dead-letter claim, no commit`,
      );
    }
    const dlqIds = (await cliJson(fx, ["dlq", "list"])).entries.map((e: { orderId: string }) => e.orderId);
    assert.deepEqual(
      healthy.filter((id) => dlqIds.includes(id)),
      [],
    );
    assert.equal(await messages(await jetstreamManager(fx.nc), names.stream), 0, "ORDERS is empty");
  });

  it("replays poison orders once the bug is fixed: committed once, gone from the DLQ", async () => {
    const [a, b] = poison;
    const replayed = await cliJson(fx, ["dlq", "replay", a, b]);
    assert.equal(replayed.replayed, 2);
    assert.equal(replayed.refused, 0);
    assert.equal(replayed.failed, 0);
    for (const r of replayed.results) assert.equal(typeof r.newSeq, "number");

    const stats = await cliJson(fx, workArgs({ ...WORK, poisonSwitch: false, exitWhenIdleMs: 1000 }));
    assert.equal(stats.committed, 2);
    const commits = countCommits(await readLedgerWrites(fx.nc, names));
    assert.equal(commits.get(a), 1);
    assert.equal(commits.get(b), 1);
    const left = (await cliJson(fx, ["dlq", "list"])).entries.map((e: { orderId: string }) => e.orderId);
    assert.deepEqual(left.sort(), [poison[2], fatal].sort());
  });

  it("refuses to replay an order the ledger holds as committed, and publishes nothing", async () => {
    // The fatal order was processed by other means (say, by hand) and recorded as committed.
    const kv = await new Kvm(fx.nc).open(names.ledgerBucket);
    await kv.put(fatal, JSON.stringify({ result: "committed", worker: "ops", attempt: 1, streamSeq: 0, at: new Date().toISOString() }));
    const jsm = await jetstreamManager(fx.nc);
    const lastSeq = (await jsm.streams.info(names.stream)).state.last_seq;

    const result = await cliJson(fx, ["dlq", "replay", fatal]);
    assert.equal(result.replayed, 0);
    assert.equal(result.refused, 1);
    assert.match(result.results[0].reason, /already committed by ops/);

    const dry = await cliJson(fx, ["dlq", "replay", "--all", "--dry-run"]);
    assert.deepEqual(dry.results.map((r: { result: string }) => r.result).sort(), ["refused", "would-replay"]);

    assert.equal((await jsm.streams.info(names.stream)).state.last_seq, lastSeq, "nothing was published to ORDERS");
    assert.equal((await cliJson(fx, ["dlq", "list"])).total, 2, "both entries are still in the DLQ");
  });
});

describe("DLQ: a crash-loop order, with healthy orders in flight beside it", function () {
  const fx = useServer();
  const list = orders("c", 12, { 2: "crash" });
  const crash = list[2].id;

  it("is dead-lettered alone, from the quarantine lane (crashed-worker, its crash count); every neighbour is committed once", async () => {
    await ensureTopology(fx);
    const seqs = await publish(fx.nc, list);
    // 8 in flight per process: the crash order's first delivery kills the process holding it and the
    // neighbours it holds. Their redeliveries are suspects (no failure recorded), retried one at a time
    // in the supervisor's quarantine-lane process, where only the crash order crashes again.
    const stats = await cliJson(fx, workArgs({ ...WORK, processes: 2, concurrency: 8, exitWhenIdleMs: 1500 }));
    assert.ok(stats.quarantined >= 1, `suspects were quarantined: ${JSON.stringify(stats)}`);

    const listed = await cliJson(fx, ["dlq", "list"]);
    assert.deepEqual(
      listed.entries.map((e: any) => [e.orderId, e.reason, e.crashes, e.deliveries, e.originalSeq]),
      [[crash, "crashed-worker", MAX_DELIVER, MAX_DELIVER, seqs.get(crash)]],
    );
    assert.match(listed.entries[0].lastError, /lost its lease 3 time\(s\) while processing this order alone in the quarantine lane/);
    const [stored] = await listDlq(fx.nc, names);
    assert.equal(stored.originalHeaders["Nats-Msg-Id"]?.[0], crash, "the entry names the original message");
    const writes = await readLedgerWrites(fx.nc, names);
    assert.deepEqual(
      writesOf(writes, crash).map((w) => w.outcome.result),
      ["dead-lettered"],
    );
    const commits = countCommits(writes);
    for (const o of list.filter((o) => o.id !== crash)) assert.equal(commits.get(o.id), 1, `${o.id} committed once`);
    const jsm = await jetstreamManager(fx.nc);
    assert.equal(await messages(jsm, names.stream), 0, "ORDERS is empty");
    assert.equal(await messages(jsm, names.quarantineStream), 0, "the quarantine lane is empty");

    const status = await cliJson(fx, ["status"]);
    assert.equal(status.dlq.byReason["crashed-worker"], 1);
    assert.equal(status.dlq.byReason["max-deliveries"], 0);
  });
});

describe("DLQ: three movers racing on the same advisories", function () {
  const fx = useServer();
  const list = orders("r", 5);
  const extra: NatsConnection[] = [];
  after(async () => Promise.all(extra.map((nc) => nc.close())));

  it("leaves exactly one DLQ entry per order", async () => {
    await ensureTopology(fx, ["--ack-wait", "1s", "--max-deliver", "2"]);
    await publish(fx.nc, list);
    const jsm = await jetstreamManager(fx.nc);

    // A worker that takes orders, records each delivery as failed and then vanishes: fetch without
    // acking until max_deliver is exceeded. (With no failure recorded, an order would be a suspect,
    // and the movers would send it to the quarantine lane instead.)
    const consumer = await jetstream(fx.nc).consumers.get(names.stream, names.consumer);
    const attempts = await AttemptLog.open(fx.nc, names);
    await waitFor("an advisory for every order", async () => {
      try {
        for await (const msg of await consumer.fetch({ max_messages: 10, expires: 2000 })) {
          const { streamSequence: streamSeq, deliveryCount: attempt } = msg.info;
          await attempts.record({ streamSeq, attempt, worker: "vanishing", error: "failed", errorClass: "Error", at: new Date().toISOString() });
          // dropped on purpose: never acked
        }
      } catch {
        // "heartbeats missed" on a loaded machine: just pull again
      }
      return (await messages(jsm, names.advisoryStream)) === list.length;
    });

    const advisories = await readAdvisories(jsm);
    const movers = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const nc = await connect({ servers: fx.server.url });
        extra.push(nc);
        const ctx = {
          js: jetstream(nc),
          names,
          ledger: await Ledger.open(nc, names),
          attempts: await AttemptLog.open(nc, names),
          worker: `mover-${i}`,
        };
        return { ctx, jsm: await jetstreamManager(nc) };
      }),
    );
    const results: MoveResult[][] = await Promise.all(advisories.map((adv) => Promise.all(movers.map((m) => moveToDlq(m.ctx, m.jsm, adv)))));
    for (const r of results) assert.equal(r.filter((x) => x === "moved").length, 1, `exactly one mover moved each order: ${r.join(", ")}`);

    // The movers of three worker processes then take the (already handled) advisories.
    await Promise.all([1, 2, 3].map(() => cliJson(fx, workArgs({ ...WORK, concurrency: 1, exitWhenIdleMs: 1000 }))));

    const listed = await cliJson(fx, ["dlq", "list"]);
    assert.equal(
      listed.total,
      list.length,
      `entries (seq, order, original seq): ${JSON.stringify(listed.entries.map((e: any) => [e.dlqSeq, e.orderId, e.originalSeq]))}`,
    );
    const perOrder = new Map<string, number>();
    for (const e of listed.entries) perOrder.set(e.orderId, (perOrder.get(e.orderId) ?? 0) + 1);
    for (const o of list) assert.equal(perOrder.get(o.id), 1, `${o.id} has ${perOrder.get(o.id) ?? 0} DLQ entries`);
    const writes = await readLedgerWrites(fx.nc, names);
    for (const o of list) assert.equal(writesOf(writes, o.id).length, 1, `${o.id}: one ledger claim`);
    assert.equal(await messages(jsm, names.stream), 0);
    assert.equal(await messages(jsm, names.advisoryStream), 0);
  });
});

/** The advisories as stored (read by sequence: a work-queue stream allows no second consumer). */
async function readAdvisories(jsm: JetStreamManager): Promise<MaxDeliveriesAdvisory[]> {
  const { first_seq, last_seq } = (await jsm.streams.info(names.advisoryStream)).state;
  const out: MaxDeliveriesAdvisory[] = [];
  for (let seq = first_seq; seq <= last_seq; seq++) {
    const msg = await jsm.streams.getMessage(names.advisoryStream, { seq });
    if (msg) out.push(msg.json<MaxDeliveriesAdvisory>());
  }
  return out;
}

describe("DLQ commands: list, show, replay --dry-run, purge, --help, --json", function () {
  const fx = useServer();
  const DAY = 86_400_000;
  const now = Date.now();
  // Entries written through the codec, one of them ten days old, so filters have something to tell apart;
  // on `dlq.orders.<source>`, the subjects of an orderq before the reason was in the subject.
  const seeded = [
    { orderId: "old-1", source: "web", reason: "max-deliveries", at: now - 10 * DAY },
    { orderId: "fat-1", source: "web", reason: "non-retryable", at: now - 60_000 },
    { orderId: "poi-1", source: "mobile", reason: "max-deliveries", at: now - 30_000 },
    { orderId: "bad-1", source: "api", reason: "invalid-payload", at: now - 10_000 },
  ] as const;
  const seqOf = new Map<string, number>();

  before(async function () {
    await ensureTopology(fx);
    const js = jetstream(fx.nc);
    for (const [i, s] of seeded.entries()) {
      const e = entry({
        orderId: s.orderId,
        source: s.source,
        reason: s.reason,
        originalSubject: `orders.${s.source}`,
        originalSeq: i + 1,
        deadLetteredAt: new Date(s.at).toISOString(),
      });
      const payload = s.reason === "invalid-payload" ? '{"id":"bad-1",' : JSON.stringify(makeOrder(s.orderId, s.source, seededRng(i)));
      const ack = await js.publish(dlqSubject(names, s.source), payload, { headers: encodeDlqHeaders(e) });
      seqOf.set(s.orderId, ack.seq);
    }
  });

  async function depth(): Promise<number> {
    return messages(await jetstreamManager(fx.nc), names.dlqStream);
  }

  it("every subcommand's --help shows a summary and an example", async () => {
    await Promise.all(
      ["list", "show", "replay", "purge"].map(async (sub) => {
        const r = await runCli(["dlq", sub, "--help"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /EXAMPLES/, `dlq ${sub} --help`);
        assert.match(r.stdout, new RegExp(`\\$ orderq dlq ${sub} `), `dlq ${sub} --help has an example`);
      }),
    );
  });

  it("list: a table with a total, filters, and --json with the fields people script against", async () => {
    const text = await cli(fx, ["dlq", "list"]);
    assert.equal(text.code, 0, text.stderr);
    for (const s of seeded) assert.ok(text.stdout.includes(s.orderId), `table lists ${s.orderId}`);
    assert.match(text.stdout, /4 entries in ORDERS_DLQ: invalid-payload 1, non-retryable 1, max-deliveries 2/);

    const all = await cliJson(fx, ["dlq", "list"]);
    assert.equal(all.total, 4);
    assert.equal(all.stream, "ORDERS_DLQ");
    for (const field of ["dlqSeq", "orderId", "source", "reason", "deliveries", "lastError", "deadLetteredAt", "originalSeq", "attemptsRecorded"]) {
      assert.ok(field in all.entries[0], `list --json entries have ${field}`);
    }
    const ids = async (args: string[]) => (await cliJson(fx, ["dlq", "list", ...args])).entries.map((e: { orderId: string }) => e.orderId);
    const [web, maxDeliveries, lastDay, sinceIso, limited] = await Promise.all([
      ids(["--source", "web"]),
      ids(["--reason", "max-deliveries"]),
      ids(["--since", "1d"]),
      ids(["--since", new Date(now - 45_000).toISOString()]),
      cliJson(fx, ["dlq", "list", "--limit", "2"]),
    ]);
    assert.deepEqual(web, ["old-1", "fat-1"]);
    assert.deepEqual(maxDeliveries, ["old-1", "poi-1"]);
    assert.deepEqual(lastDay, ["fat-1", "poi-1", "bad-1"]);
    assert.deepEqual(sinceIso, ["poi-1", "bad-1"]);
    assert.equal(limited.total, 4);
    assert.equal(limited.shown, 2);
    assert.deepEqual(
      limited.entries.map((e: { orderId: string }) => e.orderId),
      ["poi-1", "bad-1"],
      "the newest two",
    );

    const bad = await cli(fx, ["dlq", "list", "--since", "yesterday"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since: "yesterday" is neither a duration/);
  });

  it("show: one entry whole by sequence or order id, payload pretty-printed", async () => {
    const bySeq = await cliJson(fx, ["dlq", "show", `seq:${seqOf.get("poi-1")}`]);
    const byId = await cliJson(fx, ["dlq", "show", "poi-1"]);
    assert.deepEqual(bySeq, byId);
    assert.equal(byId.orderId, "poi-1");
    assert.equal(byId.payload.id, "poi-1");
    assert.equal(byId.attempts.length, 1);
    for (const field of [
      "reason",
      "lastError",
      "deliveries",
      "originalSubject",
      "originalSeq",
      "originalHeaders",
      "consumer",
      "firstAttemptAt",
      "lastAttemptAt",
      "deadLetteredAt",
    ]) {
      assert.ok(field in byId, `show --json has ${field}`);
    }
    const text = await cli(fx, ["dlq", "show", "poi-1"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /\n {2}"id": "poi-1",\n/, "payload is pretty-printed");
    assert.match(text.stdout, /Failed attempts \(1\)/);

    const invalid = await cliJson(fx, ["dlq", "show", "bad-1"]);
    assert.equal(invalid.payloadIsJson, false);
    assert.equal(invalid.payload, '{"id":"bad-1",');

    const unknown = await cli(fx, ["dlq", "show", "nope"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /not in the DLQ: nope/);
  });

  it("replay --dry-run reports what would happen and changes nothing", async () => {
    const jsm = await jetstreamManager(fx.nc);
    const lastSeq = (await jsm.streams.info(names.stream)).state.last_seq;
    const dry = await cliJson(fx, ["dlq", "replay", "--all", "--dry-run"]);
    assert.equal(dry.dryRun, true);
    assert.equal(dry.replayed, 2);
    assert.equal(dry.refused, 2);
    const refused = (id: string) => dry.results.find((r: { orderId: string }) => r.orderId === id);
    assert.equal(refused("bad-1").result, "refused");
    assert.match(refused("bad-1").reason, /invalid payload/);
    // Ten days old, past the default 7d horizon: the ledger cannot vouch for it any more.
    assert.equal(refused("old-1").result, "refused");
    assert.match(refused("old-1").reason, /^dead-lettered 10d ago, past the ledger's horizon of 7d: .*--force replays it anyway$/);
    assert.equal((await cliJson(fx, ["dlq", "replay", "old-1", "--dry-run", "--force"])).results[0].result, "would-replay");
    assert.equal((await jsm.streams.info(names.stream)).state.last_seq, lastSeq);
    assert.equal(await depth(), 4);

    const none = await cli(fx, ["dlq", "replay"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing selected/);
  });

  it("purge without a selection, with an unknown id or a malformed --older-than: one clear error, nothing deleted", async () => {
    const cases: [string[], RegExp][] = [
      [["--yes"], /^orderq: purge: nothing selected: name entries by order id or seq:<DLQ sequence>/],
      [[`seq:${seqOf.get("fat-1")}`, "nope", "--yes"], /^orderq: not in the DLQ: nope$/],
      [[String(seqOf.get("fat-1")), "--yes"], /^orderq: not in the DLQ: \d+ \(no order has that id; the entry at DLQ sequence \d+ is seq:\d+\)$/],
      [["seq:x", "--yes"], /^orderq: seq:x: a DLQ sequence is a whole number from 1/],
      [["--older-than", "7 days", "--yes"], /^orderq: --older-than: "7 days" is not a duration/],
      [["--older-than", "7d", "poi-1", "--yes"], /not both/],
      // No terminal to ask on and no --yes: refuse rather than delete unasked.
      [["--all"], /refusing to purge 4 DLQ entries .*stdin is not a terminal \(pass --yes\)/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(fx, ["dlq", "purge", ...args]);
      assert.equal(r.code, 2, `purge ${args.join(" ")}: exit ${r.code}`);
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
      assert.equal(await depth(), 4, `purge ${args.join(" ")} deleted nothing`);
    }
    const asJson = await cli(fx, ["dlq", "purge", "nope", "--yes", "--json"]);
    assert.equal(asJson.code, 2);
    assert.match(json(asJson).error.message, /not in the DLQ: nope/);
  });

  it("purge --older-than deletes only older entries; purge by sequence and order id with --yes", async () => {
    const old = await cliJson(fx, ["dlq", "purge", "--older-than", "7d", "--yes"]);
    assert.equal(old.selected, 1);
    assert.equal(old.purged, 1);
    assert.deepEqual(
      old.entries.map((e: { orderId: string }) => e.orderId),
      ["old-1"],
    );
    assert.equal(await depth(), 3);

    const named = await cliJson(fx, ["dlq", "purge", `seq:${seqOf.get("fat-1")}`, "bad-1", "--yes"]);
    assert.equal(named.purged, 2);
    const left = await cliJson(fx, ["dlq", "list"]);
    assert.deepEqual(
      left.entries.map((e: { orderId: string }) => e.orderId),
      ["poi-1"],
    );

    const rest = await cliJson(fx, ["dlq", "purge", "--all", "--yes"]);
    assert.equal(rest.purged, 1);
    const empty = await cli(fx, ["dlq", "list"]);
    assert.match(empty.stdout, /ORDERS_DLQ is empty/);
  });

  it("names a missing DLQ stream instead of failing obscurely", async () => {
    const r = await cli(fx, ["dlq", "list", "--dlq-stream", "NO_SUCH_DLQ"]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /stream NO_SUCH_DLQ not found: run `orderq topology ensure`/);
  });

  it("a foreign message (published to a DLQ subject by hand) is listed, shown and purged; replay refuses it in one line", async () => {
    const js = jetstream(fx.nc);
    const hdrs = headers();
    hdrs.set("X-Team", "payments");
    const foreign = (await js.publish(dlqSubject(names, "web"), "published here by hand", { headers: hdrs })).seq;
    // Orderq's header names with a value that does not parse: foreign too, not a crash of the readers.
    const broken = entry({ orderId: "brk-1", source: "web", reason: "non-retryable", originalSubject: "orders.web", originalSeq: 1 });
    const brokenHdrs = encodeDlqHeaders(broken);
    brokenHdrs.set("Orderq-Attempts", "[not json");
    const garbled = (await js.publish(dlqSubject(names, "web", "non-retryable"), "{}", { headers: brokenHdrs })).seq;
    const before = await depth();

    const listed = await cliJson(fx, ["dlq", "list", "--json"]);
    assert.deepEqual(listed.foreign, [foreign, garbled]);
    assert.deepEqual(
      listed.foreignMessages.map((m: { dlqSeq: number; subject: string; problem: string; bytes: number }) => [
        m.dlqSeq,
        m.subject,
        m.problem,
        m.bytes,
      ]),
      [
        [foreign, "dlq.orders.web", "has no Orderq-Reason header", 22],
        [garbled, "dlq.orders.web.non-retryable", "its Orderq-Attempts header is not JSON", 2],
      ],
    );
    // A page's totals come from the server's per-subject counts, which take the garbled message on a
    // reason's subject for an entry: the page read it as foreign, so it is counted once, as foreign.
    const page = await cliJson(fx, ["dlq", "list", "--limit", "5", "--json"]);
    assert.deepEqual([page.total, page.byReason, page.foreign.includes(garbled)], [listed.total, listed.byReason, true]);
    // --limit counts rows, foreign messages among them: the newest row is the garbled message.
    const newest = await cliJson(fx, ["dlq", "list", "--limit", "1", "--json"]);
    assert.deepEqual([newest.entries.length, newest.foreign, newest.total], [0, [garbled], listed.total]);
    const pageOfReason = await cliJson(fx, ["dlq", "list", "--reason", "non-retryable", "--limit", "5", "--json"]);
    assert.deepEqual([pageOfReason.total, pageOfReason.foreign.includes(garbled)], [listed.byReason["non-retryable"], true]);
    const table = await cli(fx, ["dlq", "list"]);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stderr, "", "shown in the list, not as a warning");
    assert.match(table.stdout, new RegExp(`│ ${foreign} +│ - +│ - +│ foreign +│ - +│ not an orderq entry: has no Orderq-Reason header`));
    assert.match(
      table.stdout,
      /^2 foreign messages \(not written by orderq\): `orderq dlq show seq:N` shows one, `orderq dlq purge seq:N` removes it\.$/m,
    );

    const shown = await cli(fx, ["dlq", "show", `seq:${foreign}`]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /foreign: not an orderq DLQ entry/);
    assert.match(shown.stdout, /^published here by hand$/m);
    assert.match(shown.stdout, /^X-Team: payments$/m);
    const shownJson = await cliJson(fx, ["dlq", "show", `seq:${garbled}`]);
    assert.deepEqual([shownJson.foreign, shownJson.dlqSeq, shownJson.payload, shownJson.payloadIsJson], [true, garbled, {}, true]);

    const replayed = await cli(fx, ["dlq", "replay", `seq:${foreign}`]);
    assert.equal(replayed.code, 2);
    assert.equal(replayed.stdout, "");
    assert.equal(
      replayed.stderr.trim(),
      `orderq: seq:${foreign} is not an orderq DLQ entry (on dlq.orders.web, not written by orderq): nothing says which order it is or where it came from, so it is never replayed; ` +
        `\`orderq dlq show seq:${foreign}\` shows it, \`orderq dlq purge seq:${foreign}\` removes it`,
    );
    const bulk = await cliJson(fx, ["dlq", "replay", "--all", "--dry-run"]);
    const refusals = bulk.results.filter((r: { dlqSeq: number }) => [foreign, garbled].includes(r.dlqSeq));
    assert.deepEqual(
      refusals.map((r: { result: string; reason: string }) => [r.result, /^seq:\d+ is not an orderq DLQ entry/.test(r.reason)]),
      [
        ["refused", true],
        ["refused", true],
      ],
    );
    assert.equal(await depth(), before, "nothing deleted or replayed");

    const purged = await cliJson(fx, ["dlq", "purge", `seq:${foreign}`, `seq:${garbled}`, "--yes"]);
    assert.deepEqual([purged.purged, purged.foreign], [2, [foreign, garbled]]);
    assert.equal(await depth(), before - 2);
    assert.equal((await cli(fx, ["dlq", "show", `seq:${foreign}`])).code, 2, "gone");
    const status = await cliJson(fx, ["status"]);
    assert.equal(status.dlq.foreign, 0);
  });

  it("a bare number is an order id: `dlq show 1` and `dlq purge 1 --yes` never reach another order's entry", async () => {
    const js = jetstream(fx.nc);
    const put = async (orderId: string) => {
      const e = entry({ orderId, source: "web", reason: "non-retryable", originalSubject: "orders.web", originalSeq: 1 });
      return (await js.publish(dlqSubject(names, "web"), JSON.stringify(makeOrder(orderId, "web", seededRng(9))), { headers: encodeDlqHeaders(e) }))
        .seq;
    };
    // The victim's entry sits at sequence N; another order's id is "N".
    const n = await put("victim-1");
    const numbered = await put(String(n));
    const shown = await cliJson(fx, ["dlq", "show", String(n)]);
    assert.deepEqual([shown.orderId, shown.dlqSeq], [String(n), numbered]);
    const bySeq = await cliJson(fx, ["dlq", "show", `seq:${n}`]);
    assert.deepEqual([bySeq.orderId, bySeq.dlqSeq], ["victim-1", n]);

    const purged = await cliJson(fx, ["dlq", "purge", String(n), "--yes"]);
    assert.deepEqual(
      purged.entries.map((e: { orderId: string; dlqSeq: number }) => [e.orderId, e.dlqSeq]),
      [[String(n), numbered]],
    );
    const victim = await cliJson(fx, ["dlq", "show", `seq:${n}`]);
    assert.equal(victim.orderId, "victim-1", "the victim's entry is still there");
  });
});

describe("DLQ: a replay that cannot publish", function () {
  const fx = useServer();

  it("reports it failed, exits 1 and keeps the entry; a later replay sends it back", async () => {
    await ensureTopology(fx);
    await publish(fx.nc, orders("lost", 2, { 0: "fatal", 1: "fatal" }));
    const worked = await cli(fx, workArgs({ ...WORK, exitWhenIdleMs: 1000 }));
    assert.equal(worked.code, 0, worked.stderr);
    const jsm = await jetstreamManager(fx.nc);
    assert.equal(await messages(jsm, names.dlqStream), 2);

    // No stream listens on orders.* any more: every publish back fails.
    await jsm.streams.delete(names.stream);
    const failed = await cli(fx, ["dlq", "replay", "--all", "--json"]);
    assert.equal(failed.code, 1, failed.stderr);
    const report = json(failed);
    assert.equal(report.failed, 2);
    assert.deepEqual(
      report.results.map((o: { result: string }) => o.result),
      ["failed", "failed"],
    );
    assert.equal(await messages(jsm, names.dlqStream), 2, "nothing removed from the DLQ");

    await ensureTopology(fx);
    const replayed = await cliJson(fx, ["dlq", "replay", "--all"]);
    assert.equal(replayed.replayed, 2);
    assert.equal(await messages(jsm, names.dlqStream), 0);
    // Handled normally this time: a replayed order runs the handler again, and fails fatally again.
    const again = await cli(fx, workArgs({ ...WORK, exitWhenIdleMs: 1000 }));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await messages(jsm, names.dlqStream), 2, "back in the DLQ once each");
  });
});

describe("DLQ: two different messages under one message id", function () {
  const fx = useServer();

  it("an invalid payload and, after the duplicate window, a valid order with its id: two entries", async () => {
    await ensureTopology(fx, [...TOPOLOGY, "--dup-window", "1s"]);
    const js = jetstream(fx.nc);
    await js.publish(orderSubject(names, "web"), "not an order", { msgID: "same-1" });
    assert.equal((await cli(fx, workArgs({ ...WORK, exitWhenIdleMs: 1000 }))).code, 0);
    await sleep(1500); // until ORDERS forgets the id: the same id is then stored again
    const order = makeOrder("same-1", "web", seededRng(3), "fatal");
    const again = await js.publish(orderSubject(names, "web"), JSON.stringify(order), { msgID: "same-1" });
    assert.equal(again.duplicate, false);
    assert.equal((await cli(fx, workArgs({ ...WORK, exitWhenIdleMs: 1000 }))).code, 0);
    const entries = (await cliJson(fx, ["dlq", "list"])).entries.map((e: { reason: string; orderId?: string }) => [e.reason, e.orderId]);
    assert.deepEqual(
      entries,
      [
        ["invalid-payload", undefined],
        ["non-retryable", "same-1"],
      ],
      "the valid order is not taken for the invalid payload's duplicate",
    );
  });
});
