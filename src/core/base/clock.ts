/**
 * The wall clock as an ISO-8601 string (`2026-11-30T16:05:01.123Z`, ms precision), made once per
 * millisecond: a worker stamps every commit with it, and at thousands of orders per second most
 * stamps of one millisecond are alike. Same string as `new Date().toISOString()` at the same moment,
 * without a Date and a new string for each.
 */
let lastMs = Number.NaN;
let lastIso = "";

export function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
