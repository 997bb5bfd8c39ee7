/**
 * Errors that the CLI turns into one clear line and an exit code.
 * Exit codes follow the chaos runner's contract: 1 invalid result, 2 bad input, 3 environment.
 */
export class OrderqError extends Error {
  constructor(message: string, readonly exitCode: number) {
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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
