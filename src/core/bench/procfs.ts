/** CPU time and memory of a process, from Linux /proc. Undefined when the process is gone (or not Linux). */
import { readFileSync } from "node:fs";

/** /proc counts CPU time in ticks of USER_HZ, which Linux fixes at 100 for user space. */
const USER_HZ = 100;

/** User + system CPU seconds the process has used so far (10 ms resolution). */
export function cpuSeconds(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The command name (field 2) may contain spaces: count from after its closing parenthesis,
  // where field 3 (state) is index 0, so utime (field 14) and stime (15) are 11 and 12.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
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
