import { Flags } from "@oclif/core";
import { OrderqCommand, nameFlags, retentionFlags, settingsFrom, topologyFlags } from "../../cli/base.js";
import { table } from "../../cli/render.js";
import { inboxFlags, inboxFrom } from "../../cli/inbox-flags.js";
import { intakeRetentionFlag, intakeRetentionFrom } from "../../cli/intake-flags.js";
import { ensureInbox, type InboxReport } from "../../core/inbox/schema.js";
import { ensureTopology, intakeRetentionMs, type ResourceReport } from "../../core/nats/topology.js";

export default class TopologyEnsure extends OrderqCommand {
  static override summary = "Create or verify the streams, consumers and KV buckets orderq needs.";
  static override description =
    "Idempotent. An existing resource whose config differs is an error naming the field and both values; " +
    "--update applies the changes JetStream allows (never retention or storage). With --inbox (or ORDERQ_INBOX_URL) it also " +
    "creates or checks the inbox table in that PostgreSQL database.\n\n" +
    "--ledger-retention (7d) is the horizon: the ledger bucket's max age, and the age after which `orderq work` deletes inbox rows. " +
    "It must exceed --dup-window and the orders stream's max age when one is set (exit 2 otherwise). A re-send of an order " +
    "after the horizon is processed again; a DLQ replay of an entry older than it is refused unless --force.";
  static override examples = [
    "<%= config.bin %> topology ensure",
    "<%= config.bin %> topology ensure --ack-wait 30s --max-deliver 10 --update",
    "<%= config.bin %> topology ensure --replicas 3 --json",
    "<%= config.bin %> topology ensure --ledger-retention 30d --update",
    "ORDERQ_INBOX_URL=postgres://orders@127.0.0.1:5432/shop <%= config.bin %> topology ensure",
  ];

  static override flags = {
    ...nameFlags,
    ...topologyFlags,
    ...retentionFlags,
    ...inboxFlags,
    ...intakeRetentionFlag,
    update: Flags.boolean({ summary: "Apply differences that JetStream allows instead of failing.", default: false }),
  };

  async run(): Promise<{ resources: Array<ResourceReport | InboxReport> }> {
    const { flags } = await this.parse(TopologyEnsure);
    const settings = { ...settingsFrom(flags), intakeRetentionMs: intakeRetentionFrom(flags) };
    intakeRetentionMs(settings); // checked against the duplicate window before anything starts
    const inbox = inboxFrom(flags);
    const nc = await this.connect(flags);
    try {
      const resources: Array<ResourceReport | InboxReport> = await ensureTopology(nc, settings, { verify: true, update: flags.update });
      if (inbox) resources.push(await ensureInbox(inbox.url, inbox.table));
      this.log(
        table(
          ["kind", "name", "action", "settings"],
          resources.map((r) => [
            r.kind,
            r.name,
            r.action,
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
