import { Args, Flags } from "@oclif/core";
import { join } from "node:path";
import { OrderqCommand } from "../../cli/base.js";
import { renderSoak, runScenario, scenariosDir, verdict } from "../../cli/chaos.js";
import { resolveScenario } from "../../core/chaos/loader.js";
import { assertWritableDir } from "../../core/chaos/report.js";
import type { ChaosResult } from "../../core/chaos/runner.js";
import { EnvironmentError, errorMessage } from "../../core/base/errors.js";
import { randomSeed } from "../../core/base/random.js";

export default class ChaosSoak extends OrderqCommand {
  static override summary = "Run one scenario over many seeds, one after the other, and print a table of verdicts.";
  static override description =
    "Seeds are --seed, --seed + 1, …, so any row can be replayed with `orderq chaos SCENARIO --seed S`. " +
    "An INVALID run keeps its evidence (under --report DIR/<seed>/, else in the temp dir) and the table says where. " +
    "A run the environment ends (a nats-server that cannot start on a busy machine) is a row with its error, and the " +
    "soak goes on. Exit code 0 when every run is valid or its only violations are writes the broker acknowledged and " +
    "then lost (proven from the streams, reported apart), 1 otherwise.";
  static override examples = [
    "<%= config.bin %> chaos soak everything --seeds 20",
    "<%= config.bin %> chaos soak broker-restart --seeds 5 --seed 1000 --report ./soak --json",
  ];

  static override args = {
    scenario: Args.string({ required: true, description: "Scenario name (see `orderq chaos list`) or path to a YAML file." }),
  };

  static override flags = {
    seeds: Flags.integer({ summary: "How many runs (seeds).", default: 10, min: 1 }),
    seed: Flags.integer({ summary: "First seed (random when absent)." }),
    orders: Flags.integer({ char: "n", summary: "Orders per run (overrides the scenario).", min: 1 }),
    report: Flags.string({ summary: "Write each run's report to DIR/<seed>/ (an INVALID one with its evidence)." }),
    keep: Flags.boolean({ summary: "Keep every run's evidence, valid or not.", default: false }),
  };

  async run(): Promise<{ ok: boolean; scenario: string; results: ChaosResult[]; errors: { seed: number; error: string }[] }> {
    const { args, flags } = await this.parse(ChaosSoak);
    const scenario = resolveScenario(args.scenario, scenariosDir(this.config));
    if (flags.report) assertWritableDir(flags.report);
    const first = flags.seed ?? randomSeed();
    const interactive = process.stderr.isTTY === true && !this.jsonEnabled();
    const results: ChaosResult[] = [];
    const errors: { seed: number; error: string }[] = [];
    for (let i = 0; i < flags.seeds; i++) {
      const seed = first + i;
      let result: ChaosResult;
      try {
        result = await runScenario(scenario, {
          config: this.config,
          seed,
          orders: flags.orders,
          unsafe: false,
          reportDir: flags.report ? join(flags.report, String(seed)) : undefined,
          keep: flags.keep,
          interactive,
        });
      } catch (err) {
        if (!(err instanceof EnvironmentError)) throw err; // Ctrl-C, bad input: the soak ends
        errors.push({ seed, error: errorMessage(err) });
        this.logLine(`error: ${scenario.name} seed ${seed} (${i + 1}/${flags.seeds}): ${errorMessage(err)}`);
        continue;
      }
      if (!this.jsonEnabled())
        this.logToStderr(
          `${verdict(result.valid)} ${scenario.name} seed ${seed} (${i + 1}/${flags.seeds}) in ${(result.elapsedMs / 1000).toFixed(1)} s`,
        );
      results.push(result);
    }
    const ok = errors.length === 0 && results.every((r) => r.valid || r.check.brokerExplained);
    this.log(renderSoak(results, errors));
    const valid = results.filter((r) => r.valid).length;
    const explained = results.filter((r) => !r.valid && r.check.brokerExplained).length;
    this.log(
      `${verdict(ok)} ${scenario.name}: ${valid} of ${flags.seeds} runs valid` +
        `${explained ? `, ${explained} invalid only by writes the broker acknowledged and lost` : ""}${errors.length ? `, ${errors.length} ended by the environment` : ""}`,
    );
    if (!ok) process.exitCode = 1;
    return { ok, scenario: scenario.name, results, errors };
  }
}
