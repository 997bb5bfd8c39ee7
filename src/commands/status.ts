import { Flags } from "@oclif/core";
import { OrderqCommand, nameFlags, namesFrom } from "../cli/base.js";
import { keyValueTable } from "../cli/render.js";
import { duration, shownAs } from "../cli/flags.js";
import { formatDuration } from "../core/base/duration.js";
import { setTimeout as sleep } from "node:timers/promises";
import { inboxFlags, inboxFrom } from "../cli/inbox-flags.js";
import { StatusReader, type Status } from "../core/ops/status.js";

export default class StatusCommand extends OrderqCommand {
  static override summary = "Show the pipeline: stream depth, consumer lag, DLQ depth by reason, ledger size.";
  static override description =
    "`consumer.lag` in --json (pending + ack pending) is the figure an external autoscaler would use; " +
    "KEDA's NATS JetStream scaler reads the same durable consumer (stream ORDERS, consumer workers) and " +
    "scales on its pending count, so `lagThreshold` there plays the part of --target-lag-seconds × rate here.\n\n" +
    "`consumer.stuck` counts orders no worker will be given again (delivered max-deliver times) that are still in " +
    "the stream: the DLQ mover in every worker process moves them; a count that stays above 0 means none runs or its moves fail.\n\n" +
    "--watch redraws the table every --interval on a terminal (one JSON line per refresh with --json) until Ctrl-C.";
  static override examples = ["<%= config.bin %> status", "<%= config.bin %> status --watch", "<%= config.bin %> status --json | jq .consumer.lag"];

  static override flags = {
    ...nameFlags,
    watch: Flags.boolean({ char: "w", summary: "Refresh until Ctrl-C.", default: false }),
    interval: duration({ summary: "Refresh period with --watch.", default: 1000, defaultHelp: shownAs(1000), minMs: 10 }),
    ...inboxFlags,
  };

  async run(): Promise<Status | undefined> {
    const { flags, raw } = await this.parse(StatusCommand);
    const intervalMs = flags.interval;
    const names = namesFrom(flags);
    const target = inboxFrom(flags, raw);
    const nc = await this.connect(flags);
    let reader: StatusReader | undefined;
    try {
      reader = await StatusReader.open(nc, names, target);
      if (!flags.watch) {
        const s = await reader.read();
        this.log(render(s));
        return s;
      }
      let stopped = false;
      const stop = () => (stopped = true);
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      const tty = process.stdout.isTTY === true;
      while (!stopped) {
        const s = await reader.read();
        if (this.jsonEnabled()) process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...s }) + "\n");
        else this.log(`${tty ? "\x1b[2J\x1b[H" : ""}${new Date().toISOString()}\n${render(s)}`);
        await sleep(intervalMs);
      }
      return undefined;
    } finally {
      await reader?.close();
      await nc.close();
    }
  }
}

function render(s: Status): string {
  return keyValueTable([
    [`stream ${s.stream.name}`, `${s.stream.messages} messages (${s.stream.bytes} bytes)`],
    [`consumer ${s.consumer.name}`, `pending ${s.consumer.pending}, ack pending ${s.consumer.ackPending}, redelivered ${s.consumer.redelivered}`],
    ["lag", s.consumer.lag],
    ["stuck (delivered max-deliver times, not yet moved to the DLQ)", s.consumer.stuck],
    [
      `DLQ ${s.dlq.name}`,
      `${s.dlq.depth} (${Object.entries(s.dlq.byReason)
        .map(([r, n]) => `${r} ${n}`)
        .join(", ")}${s.dlq.foreign ? `, not orderq entries ${s.dlq.foreign}` : ""})`,
    ],
    [
      `ledger ${s.ledger.bucket}`,
      `${s.ledger.orders} orders, ${s.ledger.writes} writes${s.ledger.payloadClaims ? `, ${s.ledger.payloadClaims} claims of payloads without an order id` : ""}, horizon ${s.ledger.retentionMs ? formatDuration(s.ledger.retentionMs) : "unlimited"}`,
    ],
    ...(s.inbox ? [[`inbox ${s.inbox.table}`, `${s.inbox.committed} committed, ${s.inbox.deadLettered} dead-lettered`] as [string, string]] : []),
    ["advisories waiting for a mover", s.advisoriesWaiting],
  ]);
}
