import { inboxFlags, inboxFrom } from "../../cli/inbox-flags.js";
import { Flags } from "@oclif/core";
import cliProgress from "cli-progress";
import { nameFlags } from "../../cli/base.js";
import { DlqCommand, filterFlags, filterFrom, given, loadSelection, plural, SELECTOR_HELP, validateSelection } from "../../cli/dlq.js";
import { c, table } from "../../cli/render.js";
import { foreignRefusal, refuseForeign, replay, type ReplayOutcome } from "../../core/ops/dlq-admin.js";
import { InputError } from "../../core/base/errors.js";

export interface DlqReplayResult {
  dryRun: boolean;
  replayed: number;
  /** Refused with a reason (already committed, invalid payload): nothing was published for them. */
  refused: number;
  /** Errors (broker unreachable...): those entries stay in the DLQ; run the replay again. */
  failed: number;
  /** Selected but not attempted because Ctrl-C (or SIGTERM) stopped the replay: still in the DLQ. */
  left: number;
  /** The DLQ sequences of those entries, to replay them by `seq:N`. */
  leftSeqs: number[];
  /** Stopped by a signal before the end (exit 130). */
  interrupted: boolean;
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
    "reported, not failures), 1 when an entry could not be replayed. --rate N sends at most N entries a second. " +
    "Ctrl-C stops cleanly: the entry in progress is finished (further Ctrl-Cs wait for it), the rest stay in the " +
    "DLQ, the summary says how many were replayed and left, and the exit code is 130. A foreign message (one orderq did " +
    "not write) is never replayed: named by seq:N it is refused with one line and exit 2, before anything is sent; " +
    "--all reports it as refused.\n\n" +
    SELECTOR_HELP;
  static override examples = [
    "<%= config.bin %> dlq replay seq:42 seq:57",
    "<%= config.bin %> dlq replay a1b2c3-000017",
    "<%= config.bin %> dlq replay --all --source web --dry-run",
    "<%= config.bin %> dlq replay --all --reason max-deliveries --json",
    "<%= config.bin %> dlq replay --all --rate 50",
  ];

  static override strict = false;
  static override usage = "dlq replay <order-id|id:X|seq:N>... | --all [--source S] [--reason R] [--dry-run] [--rate N]";

  static override flags = {
    ...nameFlags,
    ...filterFlags,
    all: Flags.boolean({ summary: "Replay every entry (narrowed by --source / --reason).", default: false }),
    "dry-run": Flags.boolean({ summary: "Report what would be replayed or refused; publish nothing.", default: false }),
    force: Flags.boolean({
      summary: "Replay entries older than the ledger's horizon too (the ledger can no longer say whether they were processed).",
      default: false,
    }),
    rate: Flags.integer({ summary: "Entries replayed per second at most; 0 = no limit.", default: 0, min: 0 }),
    ...inboxFlags,
  };

  async run(): Promise<DlqReplayResult> {
    const { argv, flags, raw } = await this.parse(DlqReplay);
    const selectors = argv as string[];
    validateSelection("replay", { selectors, bulk: given(flags, ["all"]), narrowing: given(flags, ["source", "reason"]) });
    const dryRun = flags["dry-run"];
    const inbox = inboxFrom(flags, raw);
    return this.withDlq(flags, async (nc, names) => {
      const { entries, foreign } = await loadSelection(nc, names, selectors, filterFrom(flags));
      if (selectors.length > 0 && foreign.length > 0) throw new InputError(foreignRefusal(foreign));
      // Ctrl-C stops between entries, never inside one: a further Ctrl-C only waits for the entry in
      // progress, which is bounded by the request timeout.
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const bar = process.stderr.isTTY === true && !this.jsonEnabled() && entries.length > 0 ? progressBar(entries.length) : undefined;
      let results: ReplayOutcome[];
      try {
        results = await replay(nc, names, entries, {
          dryRun,
          force: flags.force,
          inbox,
          // A dry run publishes nothing, so there is nothing to pace.
          ratePerSec: dryRun ? 0 : flags.rate,
          signal: controller.signal,
          onOutcome: () => bar?.increment(),
        });
      } finally {
        bar?.stop();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      const summary = summarise(
        dryRun,
        entries.map((e) => e.dlqSeq),
        results,
        controller.signal.aborted,
        refuseForeign(foreign),
      );
      this.log(render(summary, names.stream));
      if (summary.interrupted) process.exitCode = 130;
      else if (summary.failed > 0) process.exitCode = 1;
      return summary;
    });
  }
}

/**
 * The counts of a replay of `selected` entries that produced `results` (fewer when interrupted);
 * `refusedForeign` are the foreign messages a bulk selection met, refused without an attempt.
 */
export function summarise(
  dryRun: boolean,
  selectedSeqs: number[],
  attempted: ReplayOutcome[],
  interrupted: boolean,
  refusedForeign: ReplayOutcome[] = [],
): DlqReplayResult {
  const results = [...attempted, ...refusedForeign].sort((a, b) => a.dlqSeq - b.dlqSeq);
  const count = (result: ReplayOutcome["result"]) => results.filter((r) => r.result === result).length;
  return {
    dryRun,
    replayed: count(dryRun ? "would-replay" : "replayed"),
    refused: count("refused"),
    failed: count("failed"),
    left: selectedSeqs.length - attempted.length,
    leftSeqs: selectedSeqs.slice(attempted.length),
    interrupted: interrupted && attempted.length < selectedSeqs.length,
    results,
  };
}

/** The bar on stderr, as `produce` shows one; only on a terminal. */
function progressBar(total: number): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    { format: "replay {bar} {value}/{total} | {eta_formatted} left", stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

const RESULT_COLOUR: Record<ReplayOutcome["result"], (s: string) => string> = {
  replayed: c.green,
  "would-replay": c.green,
  refused: c.yellow,
  failed: c.red,
};

export function render(s: DlqReplayResult, stream: string): string {
  if (s.results.length === 0) {
    return s.interrupted
      ? `Interrupted before the first entry: ${plural(s.left, "entry", "entries")} left in the DLQ (${seqList(s.leftSeqs)}), nothing replayed.`
      : "No DLQ entry matches: nothing to replay.";
  }
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
    (s.failed > 0 ? ` ${plural(s.failed, "entry", "entries")} stayed in the DLQ: run the replay again.` : "") +
    (s.interrupted
      ? `\nInterrupted: ${plural(s.left, "entry", "entries")} left in the DLQ, not attempted (${seqList(s.leftSeqs)}): replay them again.`
      : "")
  );
}

/** Up to 10 entries as `seq:N`, the rest counted. */
function seqList(seqs: number[]): string {
  const shown = seqs.slice(0, 10).map((n) => `seq:${n}`);
  return seqs.length > 10 ? `${shown.join(" ")} … and ${seqs.length - 10} more` : shown.join(" ");
}
