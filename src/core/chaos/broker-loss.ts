/**
 * Writes the broker acknowledged and then lost, proven from the broker's own answers: a PubAck names
 * the stream sequence a write was stored at, so a write was lost when
 *  - the stream ends below that sequence at the end of the run (its last sequence went backwards), or
 *  - the stream now holds another message at that sequence (a ledger or DLQ stream, where nothing is
 *    removed during a run), or no message at all (the DLQ), or
 *  - the broker later acknowledged a different message at that same sequence (it issued the sequence
 *    twice, so the first write is gone; this needs no read of the stream, and so covers ORDERS, whose
 *    acked messages are removed).
 * None of these can be caused by a client: nats-server never reuses a sequence it kept.
 */
import type { AckedWrite } from "../acked-writes.js";
import type { HistoryEvent } from "../history.js";

export interface StreamEnd {
  /** The stream's last sequence when the checker read it. */
  lastSeq: number;
  /** seq → id of every message the stream still holds, for a stream nothing removes from during a run. */
  held?: Map<number, string>;
  /** A missing sequence proves a loss (nothing removes messages from this stream during a run). */
  complete?: boolean;
}

export interface BrokerEvidence {
  /** The workers' acknowledged ledger writes and DLQ copies (from their traces); ORDERS' come from the history. */
  acked: (AckedWrite & { at?: number })[];
  end: Partial<Record<AckedWrite["stream"], StreamEnd>>;
}

export interface LostWrite extends AckedWrite {
  proof: string;
}

/** Every acknowledged write the evidence proves lost, each once. */
export function lostWrites(history: HistoryEvent[], evidence: BrokerEvidence): LostWrite[] {
  const acked: (AckedWrite & { at?: number })[] = [...evidence.acked];
  for (const e of history) if (e.type === "ok") acked.push({ stream: "orders", seq: e.seq, id: e.id, at: e.time });
  const bySeq = new Map<string, (AckedWrite & { at?: number })[]>();
  for (const w of acked) {
    const key = `${w.stream}:${w.seq}`;
    bySeq.set(key, [...(bySeq.get(key) ?? []), w]);
  }
  const lost = new Map<string, LostWrite>();
  for (const w of acked) {
    const key = `${w.stream}:${w.seq}:${w.id}`;
    if (lost.has(key)) continue;
    const proof = proveLost(w, evidence.end[w.stream], bySeq.get(`${w.stream}:${w.seq}`) ?? []);
    if (proof) lost.set(key, { stream: w.stream, seq: w.seq, id: w.id, proof });
  }
  return [...lost.values()];
}

function proveLost(w: AckedWrite & { at?: number }, end: StreamEnd | undefined, sameSeq: (AckedWrite & { at?: number })[]): string | undefined {
  if (end && w.seq > end.lastSeq) return `${w.stream} ends at seq ${end.lastSeq}, below the acknowledged seq ${w.seq}`;
  const now = end?.held?.get(w.seq);
  if (now !== undefined && now !== w.id) return `${w.stream} seq ${w.seq} now holds ${now}`;
  if (now === undefined && end?.complete) return `${w.stream} no longer holds seq ${w.seq}`;
  // Acknowledged again, later, for another message: the sequence was issued twice.
  const later = sameSeq.find((o) => o.id !== w.id && o.at !== undefined && w.at !== undefined && o.at > w.at);
  if (later) return `${w.stream} seq ${w.seq} was acknowledged again, later, for ${later.id}`;
  return undefined;
}
