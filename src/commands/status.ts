import { OrderqCommand, nameFlags, namesFrom } from "../cli/base.js";
import { keyValueTable } from "../cli/render.js";
import { readStatus, type Status } from "../core/status.js";

export default class StatusCommand extends OrderqCommand {
  static override summary = "Show the pipeline: stream depth, consumer lag, DLQ depth by reason, ledger size.";
  static override description =
    "`consumer.lag` in --json (pending + ack pending) is the figure an external autoscaler would use; " +
    "KEDA's NATS JetStream scaler reads the same consumer's pending count.";
  static override examples = ["<%= config.bin %> status", "<%= config.bin %> status --json | jq .consumer.lag"];

  static override flags = { ...nameFlags };

  async run(): Promise<Status> {
    const { flags } = await this.parse(StatusCommand);
    const nc = await this.connect(flags);
    try {
      const s = await readStatus(nc, namesFrom(flags));
      this.log(
        keyValueTable([
          [`stream ${s.stream.name}`, `${s.stream.messages} messages (${s.stream.bytes} bytes)`],
          [`consumer ${s.consumer.name}`, `pending ${s.consumer.pending}, ack pending ${s.consumer.ackPending}, redelivered ${s.consumer.redelivered}`],
          ["lag", s.consumer.lag],
          [`DLQ ${s.dlq.name}`, `${s.dlq.depth} (${Object.entries(s.dlq.byReason).map(([r, n]) => `${r} ${n}`).join(", ")})`],
          [`ledger ${s.ledger.bucket}`, `${s.ledger.orders} orders, ${s.ledger.writes} writes`],
          ["advisories waiting for a mover", s.advisoriesWaiting],
        ]),
      );
      return s;
    } finally {
      await nc.close();
    }
  }
}
