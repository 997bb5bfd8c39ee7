import { OrderqCommand } from "../../cli/base.js";
import { scenariosDir } from "../../cli/chaos.js";
import { table } from "../../cli/render.js";
import { loadScenarioFile, scenarioFiles } from "../../core/chaos/loader.js";
import { faultNames } from "../../core/chaos/scenario.js";

interface ScenarioSummary {
  name: string;
  file: string;
  orders: number;
  servers: number;
  workers: number;
  faults: string[];
  description: string;
}

export default class ChaosList extends OrderqCommand {
  static override summary = "List the scenarios in scenarios/.";
  static override examples = ["<%= config.bin %> chaos list", "<%= config.bin %> chaos list --json"];

  async run(): Promise<ScenarioSummary[]> {
    await this.parse(ChaosList);
    const scenarios = scenarioFiles(scenariosDir(this.config)).map((file) => {
      const s = loadScenarioFile(file);
      return {
        name: s.name,
        file: s.file,
        orders: s.orders,
        servers: s.servers,
        workers: s.workers.processes,
        faults: faultNames(s),
        description: s.description,
      };
    });
    this.log(
      table(
        ["scenario", "orders", "servers", "workers", "faults", "description"],
        scenarios.map((s) => [s.name, s.orders, s.servers, s.workers, s.faults.join(", ") || "-", s.description]),
      ),
    );
    return scenarios;
  }
}
