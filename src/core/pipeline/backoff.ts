import { BACKOFF } from "../base/defaults.js";

/**
 * Retry delay for a failed attempt, passed to `nak(delay)`. A consumer-level `backoff` is avoided on
 * purpose: on nats-server 2.9 it replaces the ack wait (DESIGN.md), and the ack wait is our crash timer.
 */
export interface BackoffPolicy {
  /** Delay after the first failed attempt. */
  baseMs: number;
  /** Growth per further attempt (exponential). */
  factor: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Fraction of the delay that is random, 0..1: retries of orders that failed together spread out. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { ...BACKOFF };

/** The delay before attempt `failedAttempt + 1`, without jitter: monotone, capped. */
export function backoffCeiling(failedAttempt: number, policy: BackoffPolicy): number {
  const exponent = Math.max(0, failedAttempt - 1);
  return Math.min(policy.maxMs, policy.baseMs * Math.pow(policy.factor, exponent));
}

/** The jittered delay: within [ceiling × (1 − jitter), ceiling], never negative. */
export function backoffDelay(failedAttempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(failedAttempt, policy);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.max(0, Math.round(ceiling * (1 - jitter * random())));
}
