import { Flags } from "@oclif/core";
import { OrderqCommand } from "../cli/base.js";
import { orderJsonSchema } from "../core/pipeline/order.js";

export default class Schema extends OrderqCommand {
  static override summary = "Print the order format as JSON Schema (draft 2020-12), for the teams that send orders.";
  static override description =
    "Fields the schema does not name are allowed and reach the handler unchanged, unless workers run with --strict-orders " +
    "(then such an order is dead-lettered as invalid-payload); --strict prints the schema they enforce then.";
  static override examples = ["<%= config.bin %> schema > order.schema.json", "<%= config.bin %> schema --strict"];

  static override flags = {
    strict: Flags.boolean({ summary: "The schema of `orderq work --strict-orders`: no other fields.", default: false }),
  };

  async run(): Promise<Record<string, unknown>> {
    const { flags } = await this.parse(Schema);
    const schema = orderJsonSchema(flags.strict);
    // JSON either way: with --json oclif prints the returned value.
    if (!this.jsonEnabled()) this.log(JSON.stringify(schema, null, 2));
    return schema;
  }
}
