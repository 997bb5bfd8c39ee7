/**
 * The horizon against a real nats-server, with a horizon of a few seconds: `topology ensure` refuses a
 * horizon inside the duplicate window, ledger keys older than it are gone, and a DLQ replay of an entry
 * older than it is refused unless --force.
 */
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { setTimeout as sleep } from "node:timers/promises";
import { Ledger } from "../../src/core/pipeline/ledger.js";
import { DEFAULT_NAMES, kvStreamName, orderSubject } from "../../src/core/nats/names.js";
import { makeOrder } from "../../src/core/pipeline/order.js";
import { seededRng } from "../../src/core/base/random.js";
import { workArgs } from "../../src/core/fleet/work-args.js";
import { json, runCli, type CliResult } from "../support/cli.js";
import { useServer } from "../support/server.js";

const names = DEFAULT_NAMES;

describe("the horizon (--ledger-retention)", function () {
  this.timeout(60_000);
  const fx = useServer();
  const cli = (args: string[]): Promise<CliResult> => runCli(args, { NATS_URL: fx.server.url });

  it("is refused by topology ensure when it does not exceed the duplicate window (exit 2, one line, nothing created)", async () => {
    const r = await cli(["topology", "ensure", "--dup-window", "2s", "--ledger-retention", "2s"]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      "orderq: --ledger-retention 2s must exceed the duplicate window of ORDERS (2s): a re-send after the ledger forgot its order would be processed again",
    );
    const jsm = await jetstreamManager(fx.nc);
    assert.equal((await jsm.streams.names().next()).length, 0);
  });

  it("forgets ledger keys after it, and refuses a replay past it unless --force", async () => {
    const ensured = await cli(["topology", "ensure", "--dup-window", "1s", "--ledger-retention", "3s", "--ack-wait", "2s"]);
    assert.equal(ensured.code, 0, ensured.stderr);
    const js = jetstream(fx.nc);
    const rng = seededRng(3);
    const good = makeOrder("h-good", "web", rng);
    const fatal = makeOrder("h-fatal", "api", rng, "fatal");
    for (const o of [good, fatal]) await js.publish(orderSubject(names, o.source), JSON.stringify(o), { msgID: o.id });
    const work = await cli([...workArgs({ exitWhenIdleMs: 500 }), "--json"]);
    assert.equal(work.code, 0, work.stderr);
    assert.deepEqual([json(work).committed, json(work).deadLettered], [1, 1]);

    const status = json(await cli(["status", "--json"]));
    assert.equal(status.ledger.retentionMs, 3000);
    const list = json(await cli(["dlq", "list", "--json"]));
    assert.equal(list.entries.length, 1, JSON.stringify(list));
    const seq = `seq:${list.entries[0].dlqSeq}`;
    // (Within the horizon a replay goes ahead: test/unit/horizon.test.ts; asserting it here would race the 3 s.)

    // The server removes what is older than the bucket's max age: poll until the ledger's stream is empty.
    const jsm = await jetstreamManager(fx.nc);
    for (let i = 0; (await jsm.streams.info(kvStreamName(names.ledgerBucket))).state.messages > 0; i++) {
      assert.ok(i < 150, "the ledger still holds writes 15 s after a 3 s horizon");
      await sleep(100);
    }
    const ledger = await Ledger.open(fx.nc, names);
    assert.equal(await ledger.get(good.id), undefined);
    assert.equal(await ledger.get(fatal.id), undefined);
    await ledger.close();

    const refused = json(await cli(["dlq", "replay", seq, "--json"]));
    assert.equal(refused.results[0].result, "refused");
    assert.match(
      refused.results[0].reason,
      /past the ledger's horizon of 3s: the ledger no longer remembers whether this order was processed since; --force replays it anyway/,
    );
    const forced = json(await cli(["dlq", "replay", seq, "--force", "--json"]));
    assert.equal(forced.results[0].result, "replayed");
  });

  it("is changed on an existing ledger only with --update", async () => {
    const r = await cli(["topology", "ensure", "--dup-window", "1s", "--ledger-retention", "10s", "--ack-wait", "2s"]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /kv orderq_ledger exists with a different config: max_age is 3s, wanted 10s \(pass --update to apply the change\)/);
    const u = await cli(["topology", "ensure", "--dup-window", "1s", "--ledger-retention", "10s", "--ack-wait", "2s", "--update"]);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(json(await cli(["status", "--json"])).ledger.retentionMs, 10_000);
    // Another setting changed later: the horizon not given stays as the server holds it (a default
    // of 7d here, or shorter elsewhere, must not replace what the operator chose).
    const other = await cli(["topology", "ensure", "--ack-wait", "3s", "--update"]);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(json(await cli(["status", "--json"])).ledger.retentionMs, 10_000);
    // And the rule is checked against the server's duplicate window when --dup-window is not given.
    const inside = await cli(["topology", "ensure", "--ledger-retention", "1s", "--update"]);
    assert.equal(inside.code, 2, inside.stderr);
    assert.match(inside.stderr, /--ledger-retention 1s must exceed the duplicate window of ORDERS \(1s\)/);
  });

  it("the intake's key retention, like the horizon, is kept by an --update that does not give it", async () => {
    const intakeMaxAgeMs = async () =>
      (await (await jetstreamManager(fx.nc)).streams.info(kvStreamName(names.intakeBucket))).config.max_age / 1_000_000;
    const r = await cli(["topology", "ensure", "--intake-retention", "1h", "--update"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await intakeMaxAgeMs(), 3_600_000);
    const other = await cli(["topology", "ensure", "--ack-wait", "4s", "--update"]);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(await intakeMaxAgeMs(), 3_600_000, "a default of 24 h must not replace the retention the operator chose");
  });
});
