import { TimeoutError } from "@nats-io/transport-node";

/**
 * Errors that the CLI turns into one clear line and an exit code.
 * Exit codes follow the chaos runner's contract: 1 invalid result, 2 bad input, 3 environment.
 */
export class OrderqError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The user asked for something malformed: a flag, a scenario file, a selection. */
export class InputError extends OrderqError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** The world is not as needed: no nats-server binary, server unreachable, conflicting config. */
export class EnvironmentError extends OrderqError {
  constructor(message: string) {
    super(message, 3);
  }
}

/**
 * The one line and exit code the CLI shows for a failure. The client's bare "timeout" (a request
 * nobody answered in time) is named for what it is, an environment problem.
 */
export function describeFailure(err: unknown): { message: string; exitCode: number } {
  if (err instanceof TimeoutError) {
    return { message: "timeout: NATS did not answer a request in time (server restarting, overloaded, or JetStream without a leader)", exitCode: 3 };
  }
  // The client's JetStreamNotEnabled is not exported by its package: known by name.
  if (err instanceof Error && err.name === "JetStreamNotEnabled") {
    return { message: "JetStream is not enabled on this NATS server (start nats-server with -js, or add `jetstream {}` to its config)", exitCode: 3 };
  }
  const e = err as Error & { oclif?: { exit?: number } };
  const exitCode = err instanceof OrderqError ? err.exitCode : (e?.oclif?.exit ?? 1);
  return { message: (errorMessage(err) || String(err)).replace(/\s*\n\s*/g, " ").trim(), exitCode };
}

/** The message of an Error; a thrown non-Error value as JSON when it is an object, else as text. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "object" && err !== null) {
    try {
      return JSON.stringify(err);
    } catch {
      // A cyclic or otherwise unserialisable object: its tag is all there is.
    }
  }
  return String(err);
}
