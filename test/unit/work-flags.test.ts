/**
 * `orderq work`'s command line, parsed the way oclif parses it: every spelling of --processes gives the
 * same supervisor, its children are started from the parsed values and never supervise, and a bad value
 * of every duration or probability flag is refused at parse time (exit 2, naming the flag).
 */
import assert from "node:assert/strict";
import { Flags, Parser } from "@oclif/core";
import Work, { resolve } from "../../src/commands/work.js";
import { withoutParserWrapping } from "../../src/cli/base.js";
import { parseDurationFlag, parseProbability } from "../../src/cli/flags.js";
import { describeFailure } from "../../src/core/base/errors.js";
import { MAX_PROCESSES } from "../../src/core/base/defaults.js";
import { childWorkArgs, runsSupervisor } from "../../src/core/fleet/work-supervisor.js";

const flags = { ...Work.baseFlags, ...Work.flags, json: Flags.boolean() };
const options = async (args: string[]) => {
  const parsed = await Parser.parse(args, { flags, strict: true });
  return resolve(parsed.flags, parsed.flags.server, parsed.raw);
};

/** The one line and exit code the CLI would show for `args`, or undefined when they parse. */
async function refusal(args: string[]): Promise<{ message: string; exitCode: number } | undefined> {
  try {
    await options(args);
    return undefined;
  } catch (err) {
    const { message, exitCode } = describeFailure(err);
    return { message: withoutParserWrapping(message), exitCode };
  }
}

describe("orderq work flags", () => {
  for (const spelling of [["-p3"], ["-p", "3"], ["--processes=3"], ["--processes", "3"]]) {
    it(`${spelling.join(" ")}: a supervisor of 3 whose children run one worker each`, async () => {
      const o = await options(spelling);
      assert.equal(o.processes, 3);
      assert.equal(runsSupervisor(o, false), true);
      const args = childWorkArgs(o, "w1");
      assert.ok(!args.some((a) => /^(-p|--processes|--autoscale)/.test(a)), `the child's command line supervises: ${args.join(" ")}`);
      const child = await options(args.slice(1));
      assert.equal(child.processes, 1);
      assert.equal(child.workerId, "w1");
      assert.equal(runsSupervisor(child, false), false);
      // And even a command line that says otherwise does not make a supervised child supervise.
      assert.equal(runsSupervisor(o, true), false);
    });
  }

  it("an autoscaling supervisor's children neither autoscale nor exit on idle themselves", async () => {
    const o = await options(["--autoscale", "--min", "2", "--max", "4", "--cooldown", "1s", "--exit-when-idle", "2s", "--metrics-port", "9464"]);
    assert.equal(runsSupervisor(o, false), true);
    const child = await options(childWorkArgs(o, "w2").slice(1));
    assert.deepEqual([child.autoscale, child.exitWhenIdleMs, child.metricsPort, child.processes], [undefined, undefined, undefined, 1]);
  });

  it("passes every parsed duration and probability on to the children unchanged", async () => {
    const given = [
      ["--ack-wait", "1.5s"],
      ["--dup-window", "1m"],
      ["--fail-rate", ".25"],
      ["--backoff-base", "20ms"],
      ["--backoff-max", "2s"],
      ["--drain-timeout", "5s"],
      ["--crash-after-commit-rate", "1e-2"],
      ["--drop-ack-rate", "0"],
      ["-p", "2"],
    ].flat();
    const o = await options(given);
    const child = await options(childWorkArgs(o, "w1").slice(1));
    assert.deepEqual(
      [child.settings.ackWaitMs, child.settings.dupWindowMs, child.failRate, child.backoffBaseMs, child.backoffMaxMs, child.drainTimeoutMs],
      [1500, 60_000, 0.25, 20, 2000, 5000],
    );
    assert.deepEqual([child.crashAfterCommitRate, child.dropAckRate], [0.01, 0]);
  });

  const bad: [string, string][] = [
    ["--fail-rate", "7"],
    ["--fail-rate", ""],
    ["--fail-rate", "0x1"],
    ["--fail-rate", "-0.1"],
    ["--crash-after-commit-rate", "1.5"],
    ["--drop-ack-rate", "often"],
    ["--ack-wait", "10"],
    ["--ack-wait", "0s"],
    ["--dup-window", "2 minutes"],
    ["--backoff-base", "-1s"],
    ["--backoff-max", "1x"],
    ["--drain-timeout", "soon"],
    ["--exit-when-idle", "2"],
    ["--cooldown", "-1s"],
    ["--sample-every", "0ms"],
  ];
  for (const [flag, value] of bad) {
    it(`refuses ${flag} "${value}" at parse time, naming the flag (exit 2)`, async () => {
      const r = await refusal(["--autoscale", `${flag}=${value}`]);
      assert.ok(r, "accepted");
      assert.equal(r.exitCode, 2);
      assert.ok(r.message.startsWith(`${flag}: `), r.message);
      assert.ok(!/See more help|\n/.test(r.message), r.message);
    });
  }

  it(`bounds --processes and --max at ${MAX_PROCESSES}, and --min by --max`, async () => {
    for (const args of [["-p", "10000"], ["-p0"], ["--autoscale", "--max", "65"], ["--autoscale", "--min", "5", "--max", "4"]]) {
      const r = await refusal(args);
      assert.equal(r?.exitCode, 2, `${args.join(" ")} was accepted`);
    }
    assert.equal((await options([`-p${MAX_PROCESSES}`])).processes, MAX_PROCESSES);
  });

  it("refuses flags that contradict each other: --backoff-base above --backoff-max, a lane with several processes", async () => {
    await assert.rejects(options(["--backoff-base", "2s", "--backoff-max", "1s"]), /^InputError: --backoff-base 2s is above --backoff-max 1s$/);
    await assert.rejects(options(["--lane", "quarantine", "-p", "2"]), /--lane quarantine runs one process/);
    await assert.rejects(options(["--lane", "quarantine", "--autoscale"]), /--lane quarantine runs one process/);
    assert.equal((await options(["--lane", "quarantine"])).lane, "quarantine");
  });

  it("parses durations and probabilities strictly", () => {
    assert.equal(parseDurationFlag("1.5m", "--x"), 90_000);
    assert.throws(() => parseDurationFlag("5ms", "--x", 10), /--x: 5ms is below the least allowed, 10ms/);
    assert.deepEqual(
      ["0", "1", "0.5", ".5", "5e-1", " 0.25 "].map((t) => parseProbability(t, "--p")),
      [0, 1, 0.5, 0.5, 0.5, 0.25],
    );
    for (const t of ["", " ", "1.0001", "0x1", "NaN", "Infinity", "1/2", "50%"]) assert.throws(() => parseProbability(t, "--p"), /--p: /, t);
  });
});
