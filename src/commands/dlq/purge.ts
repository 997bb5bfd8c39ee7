import { createInterface } from "node:readline/promises";
import { Flags } from "@oclif/core";
import { nameFlags } from "../../cli/base.js";
import {
  DlqCommand,
  describeReasons,
  filterFlags,
  filterFrom,
  given,
  loadSelection,
  plural,
  SELECTOR_HELP,
  validateSelection,
} from "../../cli/dlq.js";
import type { StoredDlqEntry } from "../../core/pipeline/dlq-entry.js";
import { countByReason, purge, type ForeignDlqMessage } from "../../core/ops/dlq-admin.js";
import { duration } from "../../cli/flags.js";
import { table } from "../../cli/render.js";
import { InputError } from "../../core/base/errors.js";

export interface DlqPurgeResult {
  /** Entries (and foreign messages) the selection matched. */
  selected: number;
  purged: number;
  /** The person at the terminal answered no. */
  aborted: boolean;
  /** --dry-run: `entries` is what a purge would delete; nothing was. */
  dryRun: boolean;
  entries: { dlqSeq: number; orderId?: string; reason: string; deadLetteredAt: string }[];
  /** Sequences of the foreign messages (not orderq entries) selected, with seq:N or a bare --all. */
  foreign: number[];
}

/** Entries listed in the confirmation question; the rest are counted. */
const PREVIEW = 10;

export default class DlqPurge extends DlqCommand {
  static override summary = "Delete DLQ entries for good (asks first unless --yes).";
  static override description =
    "Select entries by order id or seq:N, or with --all / --older-than (narrowed by --source / --reason). " +
    "An unknown entry, a missing selection or a malformed --older-than is an error and nothing is deleted. " +
    "Asks for confirmation on a terminal; without one (scripts, CI) --yes is required. A purged order stays " +
    "dead-lettered in the ledger: publishing its id again will not process it. --dry-run lists what the same " +
    "selection would purge, asks nothing and deletes nothing. A foreign message (one orderq did not write) is " +
    "purged by seq:N, or by --all when no --source, --reason or --older-than narrows it.\n\n" +
    SELECTOR_HELP;
  static override examples = [
    "<%= config.bin %> dlq purge seq:42 a1b2c3-000017",
    "<%= config.bin %> dlq purge --older-than 7d",
    "<%= config.bin %> dlq purge --older-than 7d --dry-run",
    "<%= config.bin %> dlq purge --all --reason invalid-payload --yes --json",
  ];

  static override strict = false;
  static override usage = "dlq purge [<order-id|id:X|seq:N>...] [--all] [--older-than 7d] [--source S] [--reason R] [--yes] [--dry-run]";

  static override flags = {
    ...nameFlags,
    ...filterFlags,
    all: Flags.boolean({ summary: "Purge every entry (narrowed by --source / --reason / --older-than).", default: false }),
    "older-than": duration({ summary: "Purge entries dead-lettered longer ago than this (e.g. 7d, 12h)." }),
    yes: Flags.boolean({ char: "y", summary: "Do not ask for confirmation.", default: false }),
    "dry-run": Flags.boolean({ summary: "List what would be purged; delete nothing.", default: false }),
  };

  async run(): Promise<DlqPurgeResult> {
    const { argv, flags } = await this.parse(DlqPurge);
    const selectors = argv as string[];
    const olderThanMs = flags["older-than"];
    validateSelection("purge", { selectors, bulk: given(flags, ["all", "older-than"]), narrowing: given(flags, ["source", "reason"]) });
    const filter = { ...filterFrom(flags), beforeMs: olderThanMs === undefined ? undefined : Date.now() - olderThanMs };
    return this.withDlq(flags, async (nc, names) => {
      const { entries, foreign } = await loadSelection(nc, names, selectors, filter);
      const dryRun = flags["dry-run"];
      const selected = entries.length + foreign.length;
      const result: DlqPurgeResult = {
        selected,
        purged: 0,
        aborted: false,
        dryRun,
        entries: entries.map(brief),
        foreign: foreign.map((m) => m.dlqSeq),
      };
      if (selected === 0) {
        this.log("No DLQ entry matches: nothing to purge.");
        return result;
      }
      if (dryRun) {
        this.log(renderDryRun(entries, names.dlqStream, foreign));
        return result;
      }
      if (!flags.yes && !(await this.confirm(entries, foreign, names.dlqStream))) {
        this.log("Nothing purged.");
        return { ...result, aborted: true };
      }
      result.purged = await purge(nc, names, [...entries, ...foreign]);
      this.log(
        `Purged ${plural(result.purged, "entry", "entries")} from ${names.dlqStream}${foreign.length ? ` (${plural(foreign.length, "foreign message")} among them)` : ""}.`,
      );
      return result;
    });
  }

  /** Asks on the terminal; refuses outright when there is none to ask on. */
  private async confirm(entries: StoredDlqEntry[], foreign: ForeignDlqMessage[], stream: string): Promise<boolean> {
    const what = describeSelection(entries, foreign, "DLQ entry", "DLQ entries");
    if (!process.stdin.isTTY) {
      throw new InputError(`refusing to purge ${what} without confirmation: stdin is not a terminal (pass --yes)`);
    }
    const all = [
      ...entries.map((e) => ({ seq: e.dlqSeq, line: `  seq:${e.dlqSeq} ${e.orderId ?? "(no order id)"} ${e.reason}` })),
      ...foreign.map((m) => ({ seq: m.dlqSeq, line: `  seq:${m.dlqSeq} foreign message on ${m.subject}` })),
    ].sort((a, b) => a.seq - b.seq);
    const listed = all.slice(0, PREVIEW).map((x) => x.line);
    if (all.length > PREVIEW) listed.push(`  … and ${all.length - PREVIEW} more`);
    process.stderr.write(`${listed.join("\n")}\n`);
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await rl.question(`Purge ${what} from ${stream}? This cannot be undone. [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
  }
}

/** `3 entries (max-deliveries 3)`, and the foreign messages when there are any. */
function describeSelection(entries: StoredDlqEntry[], foreign: ForeignDlqMessage[], one = "entry", many = "entries"): string {
  const described = `${plural(entries.length, one, many)} (${describeReasons(countByReason(entries))})`;
  return foreign.length ? `${described} and ${plural(foreign.length, "foreign message")}` : described;
}

/** What a purge would delete: every entry and foreign message, one a line, then the count by reason. */
export function renderDryRun(entries: StoredDlqEntry[], stream: string, foreign: ForeignDlqMessage[] = []): string {
  const rows = [
    ...entries.map((e) => [e.dlqSeq, e.orderId ?? "-", e.source, e.reason, e.deadLetteredAt]),
    ...foreign.map((m) => [m.dlqSeq, "-", "-", `foreign (on ${m.subject})`, m.storedAt]),
  ].sort((a, b) => Number(a[0]) - Number(b[0]));
  return (
    `${table(["seq", "order id", "source", "reason", "dead-lettered at"], rows)}\n` +
    `Would purge ${describeSelection(entries, foreign)} from ${stream}. ` +
    "Dry run: nothing was deleted."
  );
}

function brief(e: StoredDlqEntry): DlqPurgeResult["entries"][number] {
  return { dlqSeq: e.dlqSeq, orderId: e.orderId, reason: e.reason, deadLetteredAt: e.deadLetteredAt };
}
