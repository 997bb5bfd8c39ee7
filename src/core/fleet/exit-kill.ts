/**
 * What must not outlive this process: child processes (nats-servers, the worker processes of chaos
 * runs and benchmarks) and the temp stores orderq made for its own servers. A test run, chaos run or benchmark that dies abruptly (an
 * uncaught error, a second Ctrl-C) would otherwise leave servers running and stores filling the disk.
 * A graceful stop ends them first; this is the last resort, so SIGKILL.
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

process.on("exit", () => {
  for (const child of children) {
    child.kill("SIGCONT"); // a stopped process (chaos pause) is killed all the same; this keeps it tidy
    child.kill("SIGKILL");
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export function killOnExit(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
}

/** No longer removes `dir` when this process exits (a detached server's store, which outlives it). */
export function keepDir(dir: string): void {
  dirs.delete(dir);
}

/** Removes `dir` when this process exits; the returned function removes it now instead. */
export function removeOnExit(dir: string): () => void {
  dirs.add(dir);
  return () => {
    dirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}
