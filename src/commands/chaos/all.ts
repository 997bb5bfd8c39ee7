import { Flags } from "@oclif/core";
import { join } from "node:path";
import { OrderqCommand } from "../../cli/base.js";
import { brokerLine, renderSummary, runScenario, scenariosDir, verdict } from "../../cli/chaos.js";
import { loadScenarioFile, scenarioFiles } from "../../core/chaos/loader.js";
import type { ChaosResult } from "../../core/chaos/runner.js";
import { InputError } from "../../core/base/errors.js";
import { assertWritableDir } from "../../core/chaos/report.js";
import { randomSeed } from "../../core/base/random.js";

export default class ChaosAll extends OrderqCommand {
  static override summary = "Run every scenario in scenarios/, one after the other, and print one table.";
  static override description = "Exit code 0 when every scenario is valid, 1 when any is not.";
  static override examples = ["<%= config.bin %> chaos all", "<%= config.bin %> chaos all --seed 7 --report ./chaos-reports --json"];

  static override flags = {
    seed: Flags.integer({ summary: "Seed of every run (random when absent)." }),
    orders: Flags.integer({ char: "n", summary: "Orders per scenario (overrides each scenario).", min: 1 }),
    report: Flags.string({ summary: "Write each scenario's report to DIR/<scenario>/ (an INVALID one with its evidence)." }),
    keep: Flags.boolean({ summary: "Keep each run's evidence (servers' stores and logs, workers' logs) even when it is valid.", default: false }),
  };

  async run(): Promise<{ valid: boolean; seed: number; results: ChaosResult[] }> {
    const { flags } = await this.parse(ChaosAll);
    const files = scenarioFiles(scenariosDir(this.config));
    if (files.length === 0) throw new InputError(`no scenarios in ${scenariosDir(this.config)}`);
    // Validate them all before running any: a typo should not surface after ten minutes.
    const scenarios = files.map((f) => loadScenarioFile(f));
    // A report directory that cannot be written fails now, not after every scenario has run.
    if (flags.report) assertWritableDir(flags.report);
    const seed = flags.seed ?? randomSeed();
    const interactive = process.stderr.isTTY === true && !this.jsonEnabled();
    const results: ChaosResult[] = [];
    for (const scenario of scenarios) {
      const result = await runScenario(scenario, {
        config: this.config,
        seed,
        orders: flags.orders,
        unsafe: false,
        reportDir: flags.report ? join(flags.report, scenario.name) : undefined,
        keep: flags.keep,
        interactive,
      });
      if (interactive) process.stderr.write(`${verdict(result.valid)} ${scenario.name} in ${(result.elapsedMs / 1000).toFixed(1)} s\n`);
      results.push(result);
    }
    const valid = results.every((r) => r.valid);
    this.log(renderSummary(results));
    for (const r of results) {
      const broker = brokerLine(r);
      if (broker) this.log(`${r.scenario}: ${broker}`);
      if (r.evidence) this.log(`evidence of ${r.scenario}: ${r.evidence}`);
    }
    this.log(`${verdict(valid)} ${results.filter((r) => r.valid).length} of ${results.length} scenarios valid (seed ${seed})`);
    if (!valid) process.exitCode = 1;
    return { valid, seed, results };
  }
}
