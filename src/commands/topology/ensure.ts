import { Flags } from "@oclif/core";
import { OrderqCommand, nameFlags, settingsFrom, topologyFlags } from "../../cli/base.js";
import { table } from "../../cli/render.js";
import { ensureTopology, type ResourceReport } from "../../core/nats/topology.js";

export default class TopologyEnsure extends OrderqCommand {
  static override summary = "Create or verify the streams, consumers and KV buckets orderq needs.";
  static override description =
    "Idempotent. An existing resource whose config differs is an error naming the field and both values; " +
    "--update applies the changes JetStream allows (never retention or storage).";
  static override examples = [
    "<%= config.bin %> topology ensure",
    "<%= config.bin %> topology ensure --ack-wait 30s --max-deliver 10 --update",
    "<%= config.bin %> topology ensure --replicas 3 --json",
  ];

  static override flags = {
    ...nameFlags,
    ...topologyFlags,
    update: Flags.boolean({ summary: "Apply differences that JetStream allows instead of failing.", default: false }),
  };

  async run(): Promise<{ resources: ResourceReport[] }> {
    const { flags } = await this.parse(TopologyEnsure);
    const settings = settingsFrom(flags);
    const nc = await this.connect(flags);
    try {
      const resources = await ensureTopology(nc, settings, { verify: true, update: flags.update });
      this.log(
        table(
          ["kind", "name", "action", "settings"],
          resources.map((r) => [r.kind, r.name, r.action, Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join("\n")]),
        ),
      );
      return { resources };
    } finally {
      await nc.close();
    }
  }
}
