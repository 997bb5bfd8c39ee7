/**
 * Child processes (nats-servers, worker processes) that must not outlive this process: a test run,
 * chaos run or benchmark that dies abruptly (an uncaught error, a second Ctrl-C) would otherwise leave
 * them running. A graceful stop ends them first; this is the last resort, so SIGKILL.
 */
import type { ChildProcess } from "node:child_process";

const children = new Set<ChildProcess>();

process.on("exit", () => {
  for (const child of children) {
    child.kill("SIGCONT"); // a stopped process (chaos pause) is killed all the same; this keeps it tidy
    child.kill("SIGKILL");
  }
});

export function killOnExit(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
}
