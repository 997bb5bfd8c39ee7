import { Flags } from "@oclif/core";
import { InputError } from "../../core/base/errors.js";
import { nameFlags } from "../../cli/base.js";
import {
  DlqCommand,
  describeReasons,
  filterFlags,
  filterFrom,
  foreignSummaryView,
  parseSince,
  plural,
  summaryView,
  truncate,
  when,
  type DlqSummaryView,
  type ForeignSummaryView,
} from "../../cli/dlq.js";
import { c, table } from "../../cli/render.js";
import { DLQ_REASONS, type DlqReason, type StoredDlqEntry } from "../../core/pipeline/dlq-entry.js";
import { countByReason, countDlq, listForeign, pageDlq, scanDlq, withoutForeign, type ForeignDlqMessage } from "../../core/ops/dlq-admin.js";

export interface DlqListResult {
  stream: string;
  /** Entries matching the filters. */
  total: number;
  /** Of those, the ones listed (the newest --limit). */
  shown: number;
  byReason: Record<DlqReason, number>;
  /** Sequences of the messages listed that are not orderq entries (foreign: published there by hand). */
  foreign: number[];
  /** Those messages: where, when, why they are not entries. */
  foreignMessages: ForeignSummaryView[];
  entries: DlqSummaryView[];
}

const HEAD = ["seq", "order id", "source", "reason", "deliveries", "last error", "dead-lettered at"];
/** Below this the last error is useless; the table may then wrap instead. */
const MIN_ERROR_WIDTH = 24;

export default class DlqList extends DlqCommand {
  static override summary = "List dead-lettered orders: why, how many attempts, when.";
  static override description =
    "One row per DLQ entry, oldest first, with the last error cut to fit the terminal; `orderq dlq show <seq>` " +
    "prints one entry whole. The total counts every entry that matches the filters, by reason.";
  static override examples = [
    "<%= config.bin %> dlq list",
    "<%= config.bin %> dlq list --reason max-deliveries --since 1h",
    "<%= config.bin %> dlq list --source web --limit 20 --json | jq '.entries[].orderId'",
    "<%= config.bin %> dlq list --reason foreign",
  ];

  static override flags = {
    ...nameFlags,
    ...filterFlags,
    // The rows shown as "foreign" can be asked for like any reason.
    reason: Flags.string({
      summary: "Only entries dead-lettered for this reason; foreign: only the messages orderq did not write.",
      options: [...DLQ_REASONS, "foreign"],
    }),
    since: Flags.string({ summary: "Only entries dead-lettered since then: a duration back from now (1h) or an ISO time." }),
    limit: Flags.integer({ char: "n", summary: "Show only the newest N rows (matching entries, and foreign messages among them).", min: 1 }),
  };

  async run(): Promise<DlqListResult> {
    const { flags } = await this.parse(DlqList);
    const sinceMs = flags.since === undefined ? undefined : parseSince(flags.since);
    if (flags.reason === "foreign") {
      if (flags.source !== undefined) throw new InputError("--reason foreign: a foreign message has no source; drop --source");
      return this.withDlq(flags, async (nc, names) => {
        const foreign = await listForeign(nc, names, sinceMs, flags.limit);
        this.log(
          foreign.length ? render(names.dlqStream, 0, [], foreign, countByReason([]), true, true) : `No foreign message in ${names.dlqStream}.`,
        );
        return {
          stream: names.dlqStream,
          total: 0,
          shown: 0,
          byReason: countByReason([]),
          foreign: foreign.map((m) => m.dlqSeq),
          foreignMessages: foreign.map(foreignSummaryView),
          entries: [],
        };
      });
    }
    const filter = { ...filterFrom(flags), sinceMs };
    return this.withDlq(flags, async (nc, names) => {
      // --limit reads only the newest entries and has the server count the rest by reason (their
      // subjects); --since reads back to that time; neither reads the whole DLQ. Only a plain list does.
      const paged = flags.limit !== undefined || filter.sinceMs !== undefined;
      const { entries, foreign } = paged ? await pageDlq(nc, names, filter, flags.limit) : await scanDlq(nc, names, filter);
      const counts = filter.sinceMs === undefined && paged ? withoutForeign(await countDlq(nc, names, filter), foreign, names) : undefined;
      // --limit N: the newest N rows, foreign messages among them (a page read back to its Nth entry
      // holds every foreign message newer than that).
      const from = flags.limit === undefined ? 0 : newestFrom([...entries, ...foreign], flags.limit);
      const shown = entries.filter((e) => e.dlqSeq >= from);
      const shownForeign = foreign.filter((m) => m.dlqSeq >= from);
      const byReason = counts?.byReason ?? countByReason(entries);
      const total = counts?.total ?? entries.length;
      const filtered = filter.source !== undefined || filter.reason !== undefined || filter.sinceMs !== undefined;
      this.log(render(names.dlqStream, total, shown, shownForeign, byReason, filtered));
      return {
        stream: names.dlqStream,
        total,
        shown: shown.length,
        byReason,
        foreign: shownForeign.map((m) => m.dlqSeq),
        foreignMessages: shownForeign.map(foreignSummaryView),
        entries: shown.map(summaryView),
      };
    });
  }
}

function render(
  stream: string,
  total: number,
  shown: StoredDlqEntry[],
  foreign: ForeignDlqMessage[],
  byReason: Record<DlqReason, number>,
  filtered: boolean,
  foreignOnly = false,
): string {
  const foreignLine = foreign.length
    ? `${plural(foreign.length, "foreign message")} (not written by orderq): \`orderq dlq show seq:N\` shows one, \`orderq dlq purge seq:N\` removes it.`
    : "";
  if (total === 0 && foreign.length === 0) return filtered ? `No entry in ${stream} matches.` : `${stream} is empty.`;
  const rows = [
    ...shown.map((e) => ({
      seq: e.dlqSeq,
      row: [e.dlqSeq, e.orderId ?? c.dim("(none)"), e.source, e.reason, e.deliveries, e.lastError, when(e.deadLetteredAt)],
    })),
    ...foreign.map((m) => ({
      seq: m.dlqSeq,
      row: [
        m.dlqSeq,
        c.dim("-"),
        c.dim("-"),
        c.yellow("foreign"),
        c.dim("-"),
        `not an orderq entry: ${m.problem} (${m.payload.length} bytes on ${m.subject})`,
        when(m.storedAt),
      ],
    })),
  ]
    .sort((a, b) => a.seq - b.seq)
    .map((r) => r.row);
  const errorWidth = Math.max(MIN_ERROR_WIDTH, (process.stdout.columns ?? 160) - otherColumnsWidth(rows));
  for (const row of rows) row[5] = truncate(String(row[5]), errorWidth);
  const more = shown.length < total ? ` (showing the newest ${shown.length})` : "";
  const entriesLine = foreignOnly
    ? ""
    : total > 0 || filtered
      ? `${plural(total, "entry", "entries")} in ${stream}${more}: ${describeReasons(byReason)}`
      : `No orderq entry in ${stream}.`;
  return [table(HEAD, rows), entriesLine, foreignLine].filter(Boolean).join("\n");
}

/** The DLQ sequence from which the newest `limit` of `messages` start (0: all of them). */
function newestFrom(messages: { dlqSeq: number }[], limit: number): number {
  const seqs = messages.map((m) => m.dlqSeq).sort((a, b) => a - b);
  return seqs.length > limit ? seqs[seqs.length - limit] : 0;
}

/** Width of every column but "last error", with cli-table3's borders and padding (3 per column). */
function otherColumnsWidth(rows: (string | number)[][]): number {
  let width = 1;
  HEAD.forEach((head, i) => {
    if (i === 5) width += 3;
    else width += 3 + Math.max(head.length, ...rows.map((r) => String(r[i]).length));
  });
  return width;
}
