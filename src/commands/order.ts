import { Args } from "@oclif/core";
import { OrderqCommand, nameFlags, namesFrom } from "../cli/base.js";
import { keyValueTable } from "../cli/render.js";
import { inboxFlags, inboxFrom } from "../cli/inbox-flags.js";
import { InputError } from "../core/base/errors.js";
import { lookupOrder, type OrderLookup } from "../core/ops/order-lookup.js";
import { ORDER_ID } from "../core/pipeline/order.js";

export default class OrderCommand extends OrderqCommand {
  static override summary =
    "Where is order X: waiting in the stream, in flight, committed (worker, attempt, time) or dead-lettered (reason, attempts).";
  static override description =
    "Reads the ledger of record (the KV ledger, or with --inbox the PostgreSQL inbox table), the DLQ and the ORDERS stream. " +
    "Exit 0 when the order is found, 1 when it is nowhere (never accepted, or purged), 2 for an id that cannot be an order's.";
  static override examples = [
    "<%= config.bin %> order k3x9-000042",
    "<%= config.bin %> order k3x9-000042 --json | jq .state",
    "ORDERQ_INBOX_URL=postgres://orderq@127.0.0.1/shop <%= config.bin %> order k3x9-000042",
  ];

  static override args = { id: Args.string({ description: "The order id.", required: true }) };
  static override flags = { ...nameFlags, ...inboxFlags };

  async run(): Promise<OrderLookup> {
    const { args, flags, raw } = await this.parse(OrderCommand);
    if (!ORDER_ID.test(args.id)) throw new InputError(`"${args.id}" is not an order id (1-64 characters of A-Z a-z 0-9 _ -)`);
    const inbox = inboxFrom(flags, raw);
    const nc = await this.connect(flags);
    let found: OrderLookup;
    try {
      found = await lookupOrder(nc, namesFrom(flags), args.id, inbox);
    } finally {
      await nc.close();
    }
    if (!this.jsonEnabled()) this.log(render(found));
    if (found.state === "unknown") {
      if (!this.jsonEnabled())
        this.logToStderr(
          `orderq: order ${args.id} is not in the ${inbox ? `inbox table ${inbox.table}` : "ledger"}, the DLQ or ${flags.stream} (never accepted, or purged)`,
        );
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
      // The outcome records the sequence, not the stream: with another --stream, or a ledger two streams
      // share, "ORDERS" would be wrong.
      `by worker ${o.outcome.worker} on attempt ${o.outcome.attempt} at ${o.outcome.at} (stream seq ${o.outcome.streamSeq})`,
    ]);
    if (o.outcome.reason) rows.push(["claim reason", `${o.outcome.reason}${o.outcome.error ? `: ${o.outcome.error}` : ""}`]);
  }
  for (const d of o.dlq) {
    rows.push([
      `dlq seq ${d.dlqSeq}`,
      `${d.reason} after ${d.deliveries} deliveries (${d.attempts} failed attempts recorded) at ${d.deadLetteredAt}: ${d.lastError}`,
    ]);
  }
  for (const m of o.inStream)
    rows.push([`${m.stream} seq ${m.seq}`, `${m.subject}, ${m.delivered ? "delivered, not acked yet" : "not delivered yet"}`]);
  return keyValueTable(rows);
}
