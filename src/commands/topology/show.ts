import { OrderqCommand, nameFlags, namesFrom } from "../../cli/base.js";
import { c, table } from "../../cli/render.js";
import { describeTopology, type ResourceState } from "../../core/nats/topology.js";

export default class TopologyShow extends OrderqCommand {
  static override summary = "Show the streams, consumers and KV buckets as they are on the server.";
  static override examples = ["<%= config.bin %> topology show", "<%= config.bin %> topology show --json"];

  static override flags = { ...nameFlags };

  async run(): Promise<{ resources: ResourceState[] }> {
    const { flags } = await this.parse(TopologyShow);
    const nc = await this.connect(flags);
    try {
      const resources = await describeTopology(nc, namesFrom(flags));
      this.log(
        table(
          ["kind", "name", "state", "settings"],
          resources.map((r) => [
            r.kind,
            r.name,
            r.exists ? c.green("exists") : c.yellow("missing"),
            Object.entries(r.settings)
              .map(([k, v]) => `${k}=${v}`)
              .join("\n"),
          ]),
        ),
      );
      return { resources };
    } finally {
      await nc.close();
    }
  }
}
