import { Args } from "@oclif/core";
import { nameFlags } from "../../cli/base.js";
import { DlqCommand, foreignView, fullView, SELECTOR_HELP, when, type DlqFullView, type ForeignView } from "../../cli/dlq.js";
import { c, keyValueTable, table } from "../../cli/render.js";
import { findDlqEntries, parseSelector } from "../../core/ops/dlq-admin.js";
import { InputError } from "../../core/base/errors.js";
import { MAX_VALUE_CHARS } from "../../core/pipeline/dlq-entry.js";

export default class DlqShow extends DlqCommand {
  static override summary = "Show one DLQ entry whole: why, the payload, every failed attempt.";
  static override description =
    SELECTOR_HELP +
    "\n\nBy seq:N, one direct get whatever the DLQ holds; by order id, a read of the whole DLQ (an entry's order id is not in its subject). " +
    "An order crashing or hanging its workers has no recorded attempt errors: it was dead-lettered after max deliveries (crashed-worker: it crashed the quarantine lane, where it ran alone, that many times). " +
    "A foreign message (one orderq did not write, e.g. published to a DLQ subject by hand) is shown by seq:N as it is: subject, headers, payload.";
  static override examples = [
    "<%= config.bin %> dlq show a1b2c3-000017",
    "<%= config.bin %> dlq show seq:42",
    "<%= config.bin %> dlq show seq:42 --json | jq '.attempts[].error'",
  ];

  static override args = {
    entry: Args.string({ description: "Order id (bare or id:X), or seq:N for the entry at DLQ sequence N.", required: true }),
  };

  static override flags = { ...nameFlags };

  async run(): Promise<DlqFullView | ForeignView> {
    const { args, flags } = await this.parse(DlqShow);
    parseSelector(args.entry); // a malformed selector is refused before anything connects
    return this.withDlq(flags, async (nc, names) => {
      const { entries: matches, foreign } = await findDlqEntries(nc, names, [args.entry]);
      if (foreign.length > 0) {
        const view = foreignView(foreign[0]);
        this.log(renderForeign(view, names.dlqStream));
        return view;
      }
      if (matches.length > 1) {
        const seqs = matches.map((m) => m.dlqSeq).join(", ");
        throw new InputError(`order ${args.entry} has ${matches.length} DLQ entries (sequences ${seqs}): show one with seq:<sequence>`);
      }
      const view = fullView(matches[0]);
      this.log(render(view, names.dlqStream));
      return view;
    });
  }
}

/** Past this, the terminal shows the start of the payload; --json always has it whole. */
const MAX_PAYLOAD_CHARS = 4000;

function capped(text: string): string {
  if (text.length <= MAX_PAYLOAD_CHARS) return text;
  return `${text.slice(0, MAX_PAYLOAD_CHARS)}\n${c.dim(`… ${text.length - MAX_PAYLOAD_CHARS} more characters (--json prints the payload whole)`)}`;
}

function payloadText(view: { payload: unknown; payloadIsJson: boolean }): string {
  return capped(view.payloadIsJson ? JSON.stringify(view.payload, null, 2) : String(view.payload));
}

function renderForeign(m: ForeignView, stream: string): string {
  const facts = keyValueTable([
    ["entry", `${stream} #${m.dlqSeq}`],
    ["kind", c.yellow("foreign: not an orderq DLQ entry (published here by hand or by another tool)")],
    ["why", m.problem],
    ["subject", m.subject],
    ["stored at", when(m.storedAt)],
    ["size", `${m.bytes} bytes`],
  ]);
  const headers = Object.entries(m.headers).map(([k, v]) => `${k}: ${v.join(", ")}`);
  return [
    facts,
    c.bold("Payload") + (m.payloadIsJson ? "" : c.dim(" (not JSON)")),
    payloadText(m),
    c.bold("Headers"),
    headers.length ? headers.join("\n") : c.dim("none"),
    c.dim(`orderq cannot replay it (nothing says which order it is); \`orderq dlq purge seq:${m.dlqSeq}\` removes it.`),
  ].join("\n");
}

function render(e: DlqFullView, stream: string): string {
  const facts = keyValueTable([
    ["entry", `${stream} #${e.dlqSeq}`],
    ["order id", e.orderId ?? "(none: the payload has no readable id)"],
    ["reason", c.yellow(e.reason)],
    ["last error", e.lastError || "-"],
    ["deliveries", e.deliveries],
    ...(e.crashes !== undefined ? [["crashes (quarantine lane)", e.crashes] as [string, number]] : []),
    ["source", e.source],
    ["original", `${e.originalStream} #${e.originalSeq} on ${e.originalSubject}`],
    ["consumer", e.consumer || "-"],
    ["first attempt", when(e.firstAttemptAt)],
    ["last attempt", when(e.lastAttemptAt)],
    ["dead-lettered at", when(e.deadLetteredAt)],
    ...(e.truncated?.length
      ? [["cut to fit", `${e.truncated.join(", ")} (each value at most ${MAX_VALUE_CHARS} characters)`] as [string, string]]
      : []),
    ...(e.attemptsOmitted ? [["attempts left out", `${e.attemptsOmitted} (the oldest; the copy's headers are bounded)`] as [string, string]] : []),
  ]);
  const payload = e.payloadOmitted
    ? c.yellow(`not kept: ${e.payloadOmitted.bytes} bytes, too large for a DLQ copy; sha256 ${e.payloadOmitted.sha256}`)
    : payloadText(e);
  const headers = Object.entries(e.originalHeaders).map(([k, v]) => `${k}: ${v.join(", ")}`);
  return [
    facts,
    c.bold("Payload") + (e.payloadIsJson ? "" : c.dim(" (not JSON)")),
    payload,
    ...(headers.length ? [c.bold("Original headers"), ...headers] : []),
    c.bold(`Failed attempts (${e.attempts.length})`),
    e.attempts.length
      ? table(
          ["#", "at", "worker", "error class", "error"],
          e.attempts.map((a) => [a.attempt, when(a.at), a.worker, a.errorClass, a.error]),
        )
      : c.dim(
          e.reason === "max-deliveries" || e.reason === "crashed-worker"
            ? "none recorded: no attempt reported an error (the worker crashed or hung)"
            : "none recorded",
        ),
  ].join("\n");
}
