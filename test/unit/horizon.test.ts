import { strict as assert } from "node:assert";
import { InputError } from "../../src/core/base/errors.js";
import { checkRetention } from "../../src/core/nats/topology.js";
import { pastHorizon } from "../../src/core/ops/dlq-admin.js";
import { Parser } from "@oclif/core";
import { nameFlags, retentionFlags, settingsFrom, topologyFlags } from "../../src/cli/base.js";
import { soakTargets, type SoakRound } from "../../src/core/bench/soak.js";

const DAY = 86_400_000;
const base = { ledgerRetentionMs: 7 * DAY, dupWindowMs: 120_000, ordersMaxAgeMs: 0, stream: "ORDERS" };

describe("the horizon's rules", () => {
  it("accepts a horizon above the duplicate window when ORDERS has no max age", () => {
    assert.doesNotThrow(() => checkRetention(base));
  });

  it("refuses a horizon not above the duplicate window, naming both", () => {
    for (const ledgerRetentionMs of [60_000, 120_000]) {
      assert.throws(
        () => checkRetention({ ...base, ledgerRetentionMs }),
        (err: unknown) =>
          err instanceof InputError &&
          err.message.startsWith(
            `--ledger-retention ${ledgerRetentionMs === 60_000 ? "1m" : "2m"} must exceed the duplicate window of ORDERS (2m)`,
          ) &&
          !err.message.includes("\n"),
      );
    }
  });

  it("refuses a horizon not above the max age of ORDERS when one is set", () => {
    assert.throws(
      () => checkRetention({ ...base, ordersMaxAgeMs: 7 * DAY }),
      (err: unknown) => err instanceof InputError && err.message.startsWith("--ledger-retention 7d must exceed the max age of ORDERS (7d)"),
    );
    assert.doesNotThrow(() => checkRetention({ ...base, ordersMaxAgeMs: 6 * DAY }));
  });

  it("defaults to 7 days and parses --ledger-retention when the command line is parsed", async () => {
    const flags = { ...nameFlags, ...topologyFlags, ...retentionFlags };
    const parse = async (args: string[]) => settingsFrom((await Parser.parse(args, { flags, strict: true })).flags);
    assert.equal((await parse([])).ledgerRetentionMs, 7 * DAY);
    assert.equal((await parse(["--ledger-retention", "30d"])).ledgerRetentionMs, 30 * DAY);
    await assert.rejects(parse(["--ledger-retention", "a week"]), /--ledger-retention: "a week" is not a duration/);
  });
});

describe("a DLQ replay past the horizon", () => {
  const now = Date.parse("2026-11-30T12:00:00Z");

  it("is refused, saying why and what overrides it", () => {
    const reason = pastHorizon("2026-11-22T12:00:00Z", 7 * DAY, now);
    assert.equal(
      reason,
      "dead-lettered 8d ago, past the ledger's horizon of 7d: the ledger no longer remembers whether this order was processed since; --force replays it anyway",
    );
  });

  it("is allowed within the horizon, with no horizon, and for an unreadable time", () => {
    assert.equal(pastHorizon("2026-11-24T12:00:00Z", 7 * DAY, now), undefined);
    assert.equal(pastHorizon("2026-11-23T12:00:00Z", 7 * DAY, now), undefined); // exactly at the horizon
    assert.equal(pastHorizon("2020-01-01T00:00:00Z", 0, now), undefined);
    assert.equal(pastHorizon("not a time", 7 * DAY, now), undefined);
  });
});

describe("the soak's targets", () => {
  const round = (n: number, serverRssMb: number | null, workRate: number) => ({ round: n, serverRssMb, workRate }) as SoakRound;

  it("are met when memory stays within 20% above round 2 and the rate within 0.9 × of it", () => {
    const t = soakTargets([round(1, 40, 20_000), round(2, 80, 20_000), round(3, 90, 19_000), round(4, 95, 18_500), round(5, 96, 18_000)]);
    assert.deepEqual(
      t.map((x) => [x.measured, x.met]),
      [
        ["96 MB vs 80 MB (1.20 ×)", true],
        ["18000/s vs 20000/s (0.90 ×)", true],
      ],
    );
  });

  it("are not met when memory grows or the rate falls, and leave memory out for a server that is not ours", () => {
    const t = soakTargets([round(1, 50, 20_000), round(2, 84, 20_000), round(3, 174, 17_000)]);
    assert.deepEqual(
      t.map((x) => x.met),
      [false, false],
    );
    assert.equal(soakTargets([round(1, null, 1), round(2, null, 1), round(3, null, 1)]).length, 1);
    assert.equal(soakTargets([round(1, 1, 1), round(2, 1, 1)]).length, 0, "two rounds: nothing to compare round 2 with");
  });
});
