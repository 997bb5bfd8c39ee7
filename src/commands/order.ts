import { Args } from "@oclif/core";
import { OrderqCommand, nameFlags, namesFrom } from "../cli/base.js";
import { keyValueTable } from "../cli/render.js";
import { lookupOrder, type OrderLookup } from "../core/ops/order-lookup.js";

export default class OrderCommand extends OrderqCommand {
  static override summary =
    "Where is order X: waiting in the stream, in flight, committed (worker, attempt, time) or dead-lettered (reason, attempts).";
  static override description =
    "Reads the ledger, the DLQ and the ORDERS stream. Exit 0 when the order is found, 1 when it is nowhere " +
    "(never accepted, or purged). Inbox mode's ledger (PostgreSQL) is not read: use `status --inbox` and the table.";
  static override examples = ["<%= config.bin %> order k3x9-000042", "<%= config.bin %> order k3x9-000042 --json | jq .state"];

  static override args = { id: Args.string({ description: "The order id.", required: true }) };
  static override flags = { ...nameFlags };

  async run(): Promise<OrderLookup> {
    const { args, flags } = await this.parse(OrderCommand);
    const nc = await this.connect(flags);
    let found: OrderLookup;
    try {
      found = await lookupOrder(nc, namesFrom(flags), args.id);
    } finally {
      await nc.close();
    }
    if (!this.jsonEnabled()) this.log(render(found));
    if (found.state === "unknown") {
      if (!this.jsonEnabled())
        this.logToStderr(`orderq: order ${args.id} is not in the ledger, the DLQ or ${flags.stream} (never accepted, or purged)`);
      process.exitCode = 1;
    }
    return found;
  }
}

function render(o: OrderLookup): string {
  const rows: [string, string | number][] = [
    ["order", o.orderId],
    ["state", o.state],
  ];
  if (o.outcome) {
    rows.push([
      o.outcome.result,
      `by worker ${o.outcome.worker} on attempt ${o.outcome.attempt} at ${o.outcome.at} (ORDERS seq ${o.outcome.streamSeq})`,
    ]);
    if (o.outcome.reason) rows.push(["claim reason", `${o.outcome.reason}${o.outcome.error ? `: ${o.outcome.error}` : ""}`]);
  }
  for (const d of o.dlq) {
    rows.push([
      `dlq seq ${d.dlqSeq}`,
      `${d.reason} after ${d.deliveries} deliveries (${d.attempts} failed attempts recorded) at ${d.deadLetteredAt}: ${d.lastError}`,
    ]);
  }
  for (const m of o.inStream) rows.push([`stream seq ${m.seq}`, `${m.subject}, ${m.delivered ? "delivered, not acked yet" : "not delivered yet"}`]);
  return keyValueTable(rows);
}
