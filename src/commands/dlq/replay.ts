import { inboxFlags, inboxFrom } from "../../cli/inbox-flags.js";
import { Flags } from "@oclif/core";
import { nameFlags } from "../../cli/base.js";
import { DlqCommand, filterFlags, filterFrom, given, loadSelection, plural, SELECTOR_HELP, validateSelection } from "../../cli/dlq.js";
import { c, table } from "../../cli/render.js";
import { replay, type ReplayOutcome } from "../../core/ops/dlq-admin.js";

export interface DlqReplayResult {
  dryRun: boolean;
  replayed: number;
  /** Refused with a reason (already committed, invalid payload): nothing was published for them. */
  refused: number;
  /** Errors (broker unreachable...): those entries stay in the DLQ; run the replay again. */
  failed: number;
  results: ReplayOutcome[];
}

export default class DlqReplay extends DlqCommand {
  static override summary = "Send dead-lettered orders back to be processed, never twice.";
  static override description =
    "Each entry is published to orders.<source> with a fresh message id and removed from the DLQ only after the " +
    "PubAck, so an interrupted replay can simply be run again. An order the ledger holds as committed is refused " +
    "(it would not be processed again), and so is an invalid payload. An entry dead-lettered longer ago than the " +
    "ledger's horizon (`topology ensure --ledger-retention`, 7d) is refused unless --force: the ledger has forgotten the order, " +
    "so it can no longer tell whether it was processed since. Replay once the cause is fixed: a poison " +
    "order that still fails comes back to the DLQ after max deliveries. Exits 0 when nothing failed (refusals are " +
    "reported, not failures), 1 when an entry could not be replayed.\n\n" +
    SELECTOR_HELP;
  static override examples = [
    "<%= config.bin %> dlq replay seq:42 seq:57",
    "<%= config.bin %> dlq replay a1b2c3-000017",
    "<%= config.bin %> dlq replay --all --source web --dry-run",
    "<%= config.bin %> dlq replay --all --reason max-deliveries --json",
  ];

  static override strict = false;
  static override usage = "dlq replay <order-id|id:X|seq:N>... | --all [--source S] [--reason R] [--dry-run]";

  static override flags = {
    ...nameFlags,
    ...filterFlags,
    all: Flags.boolean({ summary: "Replay every entry (narrowed by --source / --reason).", default: false }),
    "dry-run": Flags.boolean({ summary: "Report what would be replayed or refused; publish nothing.", default: false }),
    force: Flags.boolean({
      summary: "Replay entries older than the ledger's horizon too (the ledger can no longer say whether they were processed).",
      default: false,
    }),
    ...inboxFlags,
  };

  async run(): Promise<DlqReplayResult> {
    const { argv, flags } = await this.parse(DlqReplay);
    const selectors = argv as string[];
    validateSelection("replay", { selectors, bulk: given(flags, ["all"]), narrowing: given(flags, ["source", "reason"]) });
    const dryRun = flags["dry-run"];
    const inbox = inboxFrom(flags);
    return this.withDlq(flags, async (nc, names) => {
      const entries = await loadSelection(nc, names, selectors, filterFrom(flags));
      const results = await replay(nc, names, entries, { dryRun, force: flags.force, inbox });
      const count = (result: ReplayOutcome["result"]) => results.filter((r) => r.result === result).length;
      const summary: DlqReplayResult = {
        dryRun,
        replayed: count(dryRun ? "would-replay" : "replayed"),
        refused: count("refused"),
        failed: count("failed"),
        results,
      };
      this.log(render(summary, names.stream));
      if (summary.failed > 0) process.exitCode = 1;
      return summary;
    });
  }
}

const RESULT_COLOUR: Record<ReplayOutcome["result"], (s: string) => string> = {
  replayed: c.green,
  "would-replay": c.green,
  refused: c.yellow,
  failed: c.red,
};

function render(s: DlqReplayResult, stream: string): string {
  if (s.results.length === 0) return "No DLQ entry matches: nothing to replay.";
  const rows = s.results.map((r) => [
    r.dlqSeq,
    r.orderId ?? "-",
    RESULT_COLOUR[r.result](r.result),
    r.newSeq !== undefined ? `published as ${stream} #${r.newSeq}` : (r.reason ?? ""),
  ]);
  const verb = s.dryRun ? "would replay" : "replayed";
  const tail = s.dryRun ? " Dry run: nothing was published or removed." : "";
  return (
    `${table(["seq", "order id", "result", "detail"], rows)}\n${verb} ${s.replayed}, refused ${s.refused}, failed ${s.failed}.${tail}` +
    (s.failed > 0 ? ` ${plural(s.failed, "entry", "entries")} stayed in the DLQ: run the replay again.` : "")
  );
}
