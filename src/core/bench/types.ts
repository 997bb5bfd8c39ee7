/** What one benchmark run measures, phase by phase. */
import type { CpuUse } from "./meter.js";

/** The phases of every run. */
export type CorePhaseName = "publish" | "consume" | "floor" | "produce" | "work" | "latency";
/** The phases `--inbox` adds: the PostgreSQL inbox's floor, and orderq's inbox mode with the example handler. */
export type InboxPhaseName = "inbox-floor" | "inbox-work";
/** The phases `--intake` adds: orders through the HTTP gateway, flat out and at a fixed rate. */
export type IntakePhaseName = "intake" | "intake-latency";
export type PhaseName = CorePhaseName | InboxPhaseName | IntakePhaseName;

/** Whether a phase delivered what it must: every order once, none lost, none doubled. */
export interface Verification {
  ok: boolean;
  /** One line: what was checked and what was found. */
  detail: string;
  expected: number;
  lost: number;
  duplicated: number;
  /** Orders seen that nobody sent in this phase. */
  unexpected: number;
}

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface PhaseResult {
  phase: PhaseName;
  /** Messages in the measured window. */
  count: number;
  elapsedMs: number;
  /** count per second of elapsedMs. */
  rate: number;
  /** How elapsedMs was measured. */
  window: string;
  cpu: CpuUse;
  verification: Verification;
  /** Worker phases: peak resident memory (VmHWM) of each worker process, MB. */
  workerPeakRssMb?: number[];
  /** Worker phases: worker processes that died and were replaced. */
  workerRestarts?: number;
  latency?: LatencySummary;
}

export interface RunResult {
  run: number;
  phases: PhaseResult[];
  verified: boolean;
}

export function perSecond(count: number, ms: number): number {
  return ms > 0 ? Math.round((count * 1000) / ms) : 0;
}
