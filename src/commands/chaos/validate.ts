import { Args } from "@oclif/core";
import { OrderqCommand } from "../../cli/base.js";
import { loadScenarioFile } from "../../core/chaos/loader.js";
import type { Scenario } from "../../core/chaos/scenario.js";

export default class ChaosValidate extends OrderqCommand {
  static override summary = "Check a scenario file; an error names the file, the line and the field (exit code 2).";
  static override examples = ["<%= config.bin %> chaos validate scenarios/worker-crash.yaml"];

  static override args = {
    file: Args.string({ required: true, description: "Path to a scenario YAML file." }),
  };

  async run(): Promise<Scenario> {
    const { args } = await this.parse(ChaosValidate);
    const scenario = loadScenarioFile(args.file);
    this.log(`${scenario.file}: valid scenario ${scenario.name} (${scenario.orders} orders, ${scenario.faults.length} fault schedules)`);
    return scenario;
  }
}
