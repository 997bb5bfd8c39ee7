/**
 * A chaos run's working directory: its servers' stores and logs, its workers' logs, and what the
 * checker read. An INVALID run (or one asked to keep it) moves it into the report directory, so a
 * lost order can be traced afterwards — through the history, the ledger's stream, the DLQ and the
 * servers' own files — instead of vanishing with the temp dir.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeOnExit } from "../fleet/exit-kill.js";

export class RunDir {
  readonly path: string;
  /** Removes the dir now (and no longer at exit); a no-op after keep(). */
  private remove: (() => void) | undefined;

  constructor() {
    this.path = mkdtempSync(join(tmpdir(), "orderq-chaos-"));
    this.remove = removeOnExit(this.path);
  }

  /** Base dir of the servers: n1, n2, n3 (or n1 alone), each with its store, config and log. */
  get servers(): string {
    return join(this.path, "servers");
  }

  /** One log per worker id, appended to by each process that id runs. */
  workerLog(workerId: string): string {
    const dir = join(this.path, "workers");
    mkdirSync(dir, { recursive: true });
    return join(dir, `${workerId}.log`);
  }

  /** One log per intake gateway id (stdout and stderr), appended to by each process that id runs. */
  gatewayLog(gatewayId: string): string {
    const dir = join(this.path, "gateways");
    mkdirSync(dir, { recursive: true });
    return join(dir, `${gatewayId}.log`);
  }

  /** Every worker log so far, one after the other. */
  workerLogs(): string {
    const dir = join(this.path, "workers");
    if (!existsSync(dir)) return "";
    return readdirSync(dir)
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .join("\n");
  }

  /** Writes `name` as JSON lines: the checker's inputs, as read at the end of the run. */
  writeLines(name: string, rows: unknown[]): void {
    writeFileSync(join(this.path, name), rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : ""));
  }

  /** Moves everything into `dest` (created if needed; what is there already stays). Call once the servers are stopped. */
  keep(dest: string): void {
    mkdirSync(dest, { recursive: true });
    this.remove = undefined;
    for (const name of ["servers", "workers", "gateways", "ledger.jsonl", "dlq.jsonl", "remaining.jsonl"]) {
      const from = join(this.path, name);
      const to = join(dest, name);
      rmSync(to, { recursive: true, force: true });
      try {
        renameSync(from, to);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") continue;
        if (code !== "EXDEV") throw err;
        cpSync(from, to, { recursive: true });
      }
    }
    rmSync(this.path, { recursive: true, force: true });
  }

  discard(): void {
    this.remove?.();
    this.remove = undefined;
  }
}
