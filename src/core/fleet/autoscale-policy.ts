/**
 * When to add or retire worker processes. Pure: from the last two samples of the consumer's lag
 * (pending + ack pending), the commit count and the worker count, decide up / down / hold.
 *
 * The rule, in short: the backlog should drain within `targetLagSeconds` at the current commit rate.
 * - Scale up when it would not (drain time above target) and the lag is not already falling fast
 *   enough to meet the target; by as many workers as the shortfall suggests, at most `maxStepUp`.
 * - Scale down by one when the backlog is (nearly) gone: drain time under a quarter of the target.
 * - After any change, hold for `cooldownMs`, so a change can show its effect before the next one.
 * - Never outside [min, max]; a count outside them is brought back at once.
 */
export interface AutoscaleConfig {
  min: number;
  max: number;
  targetLagSeconds: number;
  cooldownMs: number;
  maxStepUp: number;
}

export interface Sample {
  /** ms since epoch */
  time: number;
  /** Orders not yet acked: consumer pending + ack pending. */
  lag: number;
  /** Orders committed so far (a running total). */
  committed: number;
  workers: number;
}

export interface Decision {
  action: "up" | "down" | "hold";
  /** Worker count after the decision. */
  workers: number;
  reason: string;
}

/** Drain time under this share of the target counts as "the backlog is gone". */
const IDLE_SHARE = 0.25;

export function decide(config: AutoscaleConfig, prev: Sample, now: Sample, lastChangeAt: number | undefined): Decision {
  const { min, max, targetLagSeconds } = config;
  const workers = now.workers;
  if (workers < min) return { action: "up", workers: min, reason: `below the minimum of ${min}` };
  if (workers > max) return { action: "down", workers: max, reason: `above the maximum of ${max}` };

  const seconds = Math.max(0.001, (now.time - prev.time) / 1000);
  const rate = Math.max(0, (now.committed - prev.committed) / seconds);
  const slope = (now.lag - prev.lag) / seconds; // lag change per second; negative when draining
  const drain = now.lag === 0 ? 0 : rate > 0 ? now.lag / rate : Infinity;
  const facts = `lag ${now.lag}, ${rate.toFixed(0)} orders/s, drain ${Number.isFinite(drain) ? drain.toFixed(1) + "s" : "never"}`;

  if (lastChangeAt !== undefined && now.time - lastChangeAt < config.cooldownMs) {
    return { action: "hold", workers, reason: `cooldown (${facts})` };
  }
  const fallingFastEnough = slope < 0 && now.lag / -slope <= targetLagSeconds;
  if (drain > targetLagSeconds && !fallingFastEnough) {
    if (workers >= max) return { action: "hold", workers, reason: `at the maximum of ${max} (${facts})` };
    const wanted = Number.isFinite(drain) ? Math.ceil((workers * drain) / targetLagSeconds) : workers + config.maxStepUp;
    const to = Math.min(max, workers + config.maxStepUp, Math.max(workers + 1, wanted));
    return { action: "up", workers: to, reason: `${facts} > target ${targetLagSeconds}s` };
  }
  if (drain <= targetLagSeconds * IDLE_SHARE && slope <= 0 && workers > min) {
    return { action: "down", workers: workers - 1, reason: `backlog nearly gone (${facts})` };
  }
  return { action: "hold", workers, reason: facts };
}
