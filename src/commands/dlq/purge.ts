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
import { countByReason, purge } from "../../core/ops/dlq-admin.js";
import { duration } from "../../cli/flags.js";
import { table } from "../../cli/render.js";
import { InputError } from "../../core/base/errors.js";

export interface DlqPurgeResult {
  /** Entries the selection matched. */
  selected: number;
  purged: number;
  /** The person at the terminal answered no. */
  aborted: boolean;
  /** --dry-run: `entries` is what a purge would delete; nothing was. */
  dryRun: boolean;
  entries: { dlqSeq: number; orderId?: string; reason: string; deadLetteredAt: string }[];
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
    "selection would purge, asks nothing and deletes nothing.\n\n" +
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
      const entries = await loadSelection(nc, names, selectors, filter);
      const dryRun = flags["dry-run"];
      const result: DlqPurgeResult = { selected: entries.length, purged: 0, aborted: false, dryRun, entries: entries.map(brief) };
      if (entries.length === 0) {
        this.log("No DLQ entry matches: nothing to purge.");
        return result;
      }
      if (dryRun) {
        this.log(renderDryRun(entries, names.dlqStream));
        return result;
      }
      if (!flags.yes && !(await this.confirm(entries, names.dlqStream))) {
        this.log("Nothing purged.");
        return { ...result, aborted: true };
      }
      result.purged = await purge(nc, names, entries);
      this.log(`Purged ${plural(result.purged, "entry", "entries")} from ${names.dlqStream}.`);
      return result;
    });
  }

  /** Asks on the terminal; refuses outright when there is none to ask on. */
  private async confirm(entries: StoredDlqEntry[], stream: string): Promise<boolean> {
    const what = `${plural(entries.length, "DLQ entry", "DLQ entries")} (${describeReasons(countByReason(entries))})`;
    if (!process.stdin.isTTY) {
      throw new InputError(`refusing to purge ${what} without confirmation: stdin is not a terminal (pass --yes)`);
    }
    const listed = entries.slice(0, PREVIEW).map((e) => `  seq:${e.dlqSeq} ${e.orderId ?? "(no order id)"} ${e.reason}`);
    if (entries.length > PREVIEW) listed.push(`  … and ${entries.length - PREVIEW} more`);
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

/** What a purge of `entries` would delete: every entry, one a line, then the count by reason. */
export function renderDryRun(entries: StoredDlqEntry[], stream: string): string {
  const rows = entries.map((e) => [e.dlqSeq, e.orderId ?? "-", e.source, e.reason, e.deadLetteredAt]);
  return (
    `${table(["seq", "order id", "source", "reason", "dead-lettered at"], rows)}\n` +
    `Would purge ${plural(entries.length, "entry", "entries")} (${describeReasons(countByReason(entries))}) from ${stream}. ` +
    "Dry run: nothing was deleted."
  );
}

function brief(e: StoredDlqEntry): DlqPurgeResult["entries"][number] {
  return { dlqSeq: e.dlqSeq, orderId: e.orderId, reason: e.reason, deadLetteredAt: e.deadLetteredAt };
}
