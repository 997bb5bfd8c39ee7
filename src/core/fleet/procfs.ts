/** A process's CPU time, memory and thread states, from Linux /proc. Undefined when the process is gone (or not Linux). */
import { readdirSync, readFileSync } from "node:fs";

/** /proc counts CPU time in ticks of USER_HZ, which Linux fixes at 100 for user space. */
const USER_HZ = 100;

/** User + system CPU seconds the process has used so far (10 ms resolution): utime and stime, fields 14 and 15. */
export function cpuSeconds(pid: number): number | undefined {
  const fields = statFields(`/proc/${pid}/stat`);
  return fields && (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** Pids whose parent is `pid`, from /proc/<pid>/stat (field 4); none when /proc is absent. */
export function childPids(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  return entries.map(Number).filter((p) => statFields(`/proc/${p}/stat`)?.[1] === String(pid));
}

/** The state letter of each thread of the process (R, S, T for stopped…); a thread that ends meanwhile is left out. */
export function threadStates(pid: number): string[] | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  return tids.map((tid) => statFields(`/proc/${pid}/task/${tid}/stat`)?.[0]).filter((state): state is string => state !== undefined);
}

/**
 * A stat file's fields from field 3 (state) on, at index 0. The command name (field 2) may contain
 * spaces, so they are counted from after its closing parenthesis.
 */
function statFields(path: string): string[] | undefined {
  const stat = read(path);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * The process's state letter (R, S, T, Z…), from /proc/<pid>/stat; undefined when it is gone or /proc
 * is absent. A zombie (Z) has exited; it only waits for its parent to read its status.
 */
export function processState(pid: number): string | undefined {
  return statFields(`/proc/${pid}/stat`)?.[0];
}

/** The process's argv (program first), from /proc/PID/cmdline; undefined when it is gone or /proc is absent. */
export function commandArgs(pid: number): string[] | undefined {
  return read(`/proc/${pid}/cmdline`)
    ?.split("\0")
    .filter((arg) => arg !== "");
}

/** Resident memory now (VmRSS) in MB. */
export function rssMb(pid: number): number | undefined {
  const match = read(`/proc/${pid}/status`)?.match(/^VmRSS:\s+(\d+) kB/m);
  return match ? Number(match[1]) / 1024 : undefined;
}

/** Peak resident memory (VmHWM) in MB. */
export function peakRssMb(pid: number): number | undefined {
  const match = read(`/proc/${pid}/status`)?.match(/^VmHWM:\s+(\d+) kB/m);
  return match ? Number(match[1]) / 1024 : undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
