import { Flags } from "@oclif/core";
import { OrderqCommand, nameFlags, retentionFlags, settingsFrom, topologyFlags } from "../../cli/base.js";
import { table } from "../../cli/render.js";
import { inboxFlags, inboxFrom } from "../../cli/inbox-flags.js";
import { intakeRetentionFlag, intakeRetentionFrom } from "../../cli/intake-flags.js";
import { ensureInbox, type InboxReport } from "../../core/inbox/schema.js";
import { ensureTopology, intakeRetentionMs, type ResourceReport, type RetentionKey, type SettingKey } from "../../core/nats/topology.js";

/** The flag that sets each topology setting. */
const SETTING_FLAGS: Record<SettingKey | RetentionKey, string> = {
  replicas: "replicas",
  ackWaitMs: "ack-wait",
  maxDeliver: "max-deliver",
  dupWindowMs: "dup-window",
  maxAckPending: "max-ack-pending",
  ledgerRetentionMs: "ledger-retention",
  intakeRetentionMs: "intake-retention",
};

export default class TopologyEnsure extends OrderqCommand {
  static override summary = "Create or verify the streams, consumers and KV buckets orderq needs.";
  static override description =
    "Idempotent. An existing resource whose config differs from a setting given is an error naming the field and both values. " +
    "Only the settings given are compared or changed; the others stay as the server holds them. " +
    "--update applies the changes JetStream allows (never retention or storage) and shows what the server holds afterwards, with each change. " +
    "An ack wait below 300ms, or replicas above 1 on a single server, is refused before anything changes. With --inbox (or ORDERQ_INBOX_URL) it also " +
    "creates or checks the inbox table in that PostgreSQL database.\n\n" +
    "--ledger-retention (7d) is the horizon: the ledger bucket's max age, and the age after which `orderq work` deletes inbox rows. " +
    "Like every setting it is compared or changed only when given. " +
    "It must exceed the duplicate window and the orders stream's max age when one is set (exit 2 otherwise). A re-send of an order " +
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
    const { flags, raw } = await this.parse(TopologyEnsure);
    const settings = { ...settingsFrom(flags), intakeRetentionMs: intakeRetentionFrom(flags) };
    intakeRetentionMs(settings); // checked against the duplicate window before anything starts
    const inbox = inboxFrom(flags, raw);
    // Only the settings given on the command line are compared or applied; the rest stay as they are.
    const given = new Set(raw.flatMap((t) => (t.type === "flag" ? [t.flag] : [])));
    const chosen = (Object.keys(SETTING_FLAGS) as Array<SettingKey | RetentionKey>).filter((k) => given.has(SETTING_FLAGS[k]));
    const nc = await this.connect(flags);
    try {
      const resources: Array<ResourceReport | InboxReport> = await ensureTopology(nc, settings, { verify: true, update: flags.update, chosen });
      if (inbox) resources.push(await ensureInbox(inbox.url, inbox.table));
      this.log(
        table(
          ["kind", "name", "action", "settings"],
          resources.map((r) => [
            r.kind,
            r.name,
            "changed" in r && r.changed?.length ? [r.action, ...r.changed.map((c) => `${c.field} ${c.from} → ${c.to}`)].join("\n") : r.action,
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
