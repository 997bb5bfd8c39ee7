/**
 * Flags whose values are parsed when the command line is parsed, before a command's run() does
 * anything: a bad duration or probability is exit 2 with one line naming the flag, and the command
 * (and every process it starts, see workArgs) only ever sees the typed value.
 */
import { Flags } from "@oclif/core";
import { formatDuration, parseDuration } from "../core/base/duration.js";
import { InputError } from "../core/base/errors.js";

/**
 * A duration (`500ms`, `2s`, `1.5m`, `1h`, `7d`) in milliseconds. `minMs` (default 0) is the
 * smallest value accepted. Throws InputError naming the flag: not a duration (a negative one
 * included), or below minMs.
 */
export function parseDurationFlag(input: string, flag: string, minMs = 0): number {
  const ms = parseDuration(input, flag);
  if (ms < minMs) throw new InputError(`${flag}: ${input} is below the least allowed, ${formatDuration(minMs)}`);
  return ms;
}

/**
 * A probability: a plain decimal number from 0 to 1 (`0`, `0.05`, `.5`, `1`, `1e-3`). Text that
 * JavaScript's Number() would also take (an empty string, `0x1`, ` `) is refused, not read as 0 or 1.
 * Throws InputError naming the flag.
 */
export function parseProbability(input: string, flag: string): number {
  const value = /^\s*(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?\s*$/i.test(input) ? Number(input) : NaN;
  if (!(value >= 0 && value <= 1)) throw new InputError(`${flag}: "${input}" is not a probability between 0 and 1`);
  return value;
}

/** `--name <duration>`, in milliseconds; give `default` in ms (--help shows it as a duration). */
export const duration = Flags.custom<number, { minMs?: number }>({
  helpValue: "<duration>",
  parse: async (input, _ctx, opts) => parseDurationFlag(input, `--${opts.name}`, opts.minMs),
});

/** `--name <0..1>`, a probability. */
export const probability = Flags.custom<number>({
  helpValue: "<0..1>",
  parse: async (input, _ctx, opts) => parseProbability(input, `--${opts.name}`),
});

/** defaultHelp for a duration flag: `--ack-wait <duration> [default: 10s]`, not `[default: 10000]`. */
export const shownAs = (ms: number) => async () => formatDuration(ms);
