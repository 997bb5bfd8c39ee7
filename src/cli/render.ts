/** Terminal rendering: colour only on a TTY without NO_COLOR, tables, and a live status line. */
import chalk from "chalk";
import { stripVTControlCharacters } from "node:util";
import Table from "cli-table3";

const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
if (!colour) chalk.level = 0;

export const c = chalk;

/** The terminal's width in columns when stdout is a TTY; undefined when piped (tables keep their natural width). */
export function terminalWidth(): number | undefined {
  return process.stdout.isTTY === true && process.stdout.columns > 0 ? process.stdout.columns : undefined;
}

/** Narrowest a column is squeezed to (its padding included), so a cell still shows a few characters. */
const MIN_COLUMN = 8;
/** A column keeps its longest word whole (an id, a scenario name) up to this width, padding included. */
const MAX_WORD_FLOOR = 24;

/**
 * Column widths (padding included) for a table whose columns would naturally be `natural` wide to
 * fit in `width` terminal columns (a border per column plus one): undefined when it fits as it is.
 * Otherwise the widest columns are narrowed first, each down to its `floor` (by default MIN_COLUMN;
 * table() passes the width of the column's longest word, so names are wrapped, not cut), then, if
 * that is not enough, all but the first down to MIN_COLUMN, then the first too; a table of very many
 * columns may still be wider than `width`.
 */
export function fitColumns(natural: number[], width: number, floors: number[] = []): number[] | undefined {
  let excess = natural.reduce((a, b) => a + b, 0) + natural.length + 1 - width;
  if (excess <= 0) return undefined;
  const widths = [...natural];
  const wordFloor = (i: number) => Math.max(MIN_COLUMN, floors[i] ?? MIN_COLUMN);
  // The first column names the row (a scenario, a key, a sequence): it is the last to be cut.
  for (const floor of [wordFloor, (i: number) => (i === 0 ? wordFloor(i) : MIN_COLUMN), () => MIN_COLUMN]) {
    while (excess > 0) {
      const above = widths.map((w, i) => (w > floor(i) ? w : -1));
      const widest = above.indexOf(Math.max(...above));
      if (above[widest] < 0) break;
      widths[widest]--;
      excess--;
    }
  }
  return widths;
}

/** cli-table3 options that make `rows` (cells as printed, head included) fit `width`: wrapped on word boundaries, long words cut with "…". */
function fitted(rows: string[][], width: number | undefined): { colWidths?: number[]; wordWrap?: boolean } {
  if (width === undefined || rows.length === 0) return {};
  const columns = Math.max(...rows.map((r) => r.length));
  const widest = (i: number, split: RegExp) =>
    Math.max(
      ...rows.map((r) =>
        Math.max(
          ...stripVTControlCharacters(r[i] ?? "")
            .split(split)
            .map((part) => part.length),
        ),
      ),
    ) + 2;
  const natural = Array.from({ length: columns }, (_, i) => widest(i, /\n/));
  const floors = Array.from({ length: columns }, (_, i) => Math.min(MAX_WORD_FLOOR, widest(i, /\s+/)));
  const colWidths = fitColumns(natural, width, floors);
  return colWidths ? { colWidths, wordWrap: true } : {};
}

/** A table with a header row; on a terminal (`width`, by default the terminal's) its columns are fitted to the width. */
export function table(head: string[], rows: (string | number)[][], width = terminalWidth()): string {
  const cells = rows.map((row) => row.map(String));
  const t = new Table({
    head: head.map((h) => chalk.bold(h)),
    style: { head: [], border: colour ? ["grey"] : [] },
    ...fitted([head, ...cells], width),
  });
  for (const row of cells) t.push(row);
  return t.toString();
}

/** A two-column table of names and values; fitted to `width` as table() is. */
export function keyValueTable(rows: [string, string | number][], width = terminalWidth()): string {
  const cells = rows.map(([k, v]) => [k, String(v)]);
  const t = new Table({ style: { head: [], border: colour ? ["grey"] : [] }, ...fitted(cells, width) });
  for (const [k, v] of cells) t.push({ [chalk.bold(k)]: v });
  return t.toString();
}

/** Where StatusLine writes: stderr, or a stand-in in tests. */
export interface StatusOut {
  isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * Rewrites one line of stderr on a TTY; does nothing when piped. Log lines go through print(), which
 * clears the status line first (`\r` + clear to end of line) and redraws it after, so a log line is
 * never glued onto it.
 */
export class StatusLine {
  private timer?: NodeJS.Timeout;
  private render?: () => string;
  readonly enabled: boolean;

  constructor(private readonly out: StatusOut = process.stderr) {
    this.enabled = out.isTTY === true;
  }

  start(render: () => string, everyMs = 500): void {
    if (!this.enabled) return;
    this.render = render;
    this.timer = setInterval(() => this.draw(), everyMs);
  }

  /** Writes `line` (and a newline) above the status line; piped, or before start() or after stop(), just the line. */
  print(line: string): void {
    if (!this.timer) {
      this.out.write(`${line}\n`);
      return;
    }
    this.out.write(`\r\x1b[K${line}\n`);
    this.draw();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.out.write("\r\x1b[K");
  }

  private draw(): void {
    if (this.render) this.out.write(`\r\x1b[K${this.render()}`);
  }
}

export function rate(count: number, ms: number): string {
  return ms > 0 ? `${Math.round((count * 1000) / ms)}/s` : "-";
}
