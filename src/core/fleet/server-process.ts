/**
 * What the nats-server and PostgreSQL launchers share: a server process watched until it exits (and
 * killed if orderq exits first), and a start that waits until the server really answers.
 */
import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { EnvironmentError, errorMessage } from "../base/errors.js";
import { killOnExit } from "./exit-kill.js";

/**
 * Resolves when `child` exits, after `onExit`; the child is killed if this process exits first
 * (unless `killOnExit: false`, for a server meant to outlive orderq).
 */
export function watchExit(child: ChildProcess, onExit: () => void, options: { killOnExit?: boolean } = {}): Promise<void> {
  if (options.killOnExit !== false) killOnExit(child);
  return new Promise((resolve) => {
    child.once("exit", () => {
      onExit();
      resolve();
    });
  });
}

export interface ReadyCheck {
  /** Names the server in messages, e.g. "postgres on port 5433". */
  what: string;
  /** Resolves once the server answers as it should; rejects (to be retried) until then. */
  probe: () => Promise<void>;
  timeoutMs: number;
  everyMs: number;
  /** Why the process exited at start, e.g. the end of its log. */
  exitDetail: () => string;
  /** Ends the process that did not become ready in time. */
  kill: () => Promise<void>;
}

/**
 * Waits until `check.probe` resolves. Throws EnvironmentError (exit 3) when the process could not be
 * spawned, exited first (with its exit detail), or was not ready within the timeout (it is killed).
 */
export async function waitUntilReady(child: ChildProcess, exited: Promise<void>, check: ReadyCheck): Promise<void> {
  let spawnError: Error | undefined;
  let gone = false;
  child.once("error", (err) => (spawnError = err));
  void exited.then(() => (gone = true));
  const deadline = Date.now() + check.timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    if (spawnError) throw new EnvironmentError(`cannot start ${check.what}: ${spawnError.message}`);
    if (gone) throw new EnvironmentError(`${check.what} exited at start: ${check.exitDetail()}`);
    try {
      await check.probe();
      return;
    } catch (err) {
      lastError = errorMessage(err);
      await sleep(check.everyMs);
    }
  }
  await check.kill();
  throw new EnvironmentError(`${check.what} not ready after ${check.timeoutMs} ms: ${lastError}`);
}
