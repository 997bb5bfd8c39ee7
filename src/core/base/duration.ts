import { InputError } from "./errors.js";

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** `500ms`, `2s`, `1.5m`, `1h`, `7d` in milliseconds; undefined when `text` is not a duration. */
export function durationMs(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  return match ? Math.round(Number(match[1]) * UNITS[match[2]]) : undefined;
}

/** durationMs, or an InputError; `what` names the flag or field. */
export function parseDuration(text: string, what = "duration"): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new InputError(`${what}: "${text}" is not a duration (write e.g. 500ms, 2s, 1m, 7d)`);
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms >= 86_400_000) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
