/** Terminal rendering: colour only on a TTY without NO_COLOR, tables, and a live status line. */
import chalk from "chalk";
import Table from "cli-table3";

const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
if (!colour) chalk.level = 0;

export const c = chalk;

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head: head.map((h) => chalk.bold(h)),
    style: { head: [], border: colour ? ["grey"] : [] },
  });
  for (const row of rows) t.push(row.map(String));
  return t.toString();
}

export function keyValueTable(rows: [string, string | number][]): string {
  const t = new Table({ style: { head: [], border: colour ? ["grey"] : [] } });
  for (const [k, v] of rows) t.push({ [chalk.bold(k)]: String(v) });
  return t.toString();
}

/** Rewrites one line of stderr on a TTY; does nothing when piped. */
export class StatusLine {
  private timer?: NodeJS.Timeout;
  readonly enabled = process.stderr.isTTY === true;

  start(render: () => string, everyMs = 500): void {
    if (!this.enabled) return;
    this.timer = setInterval(() => process.stderr.write(`\r\x1b[K${render()}`), everyMs);
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    process.stderr.write("\r\x1b[K");
  }
}

export function rate(count: number, ms: number): string {
  return ms > 0 ? `${Math.round((count * 1000) / ms)}/s` : "-";
}
