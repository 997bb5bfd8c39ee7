/**
 * Writes the broker acknowledged and then lost, proven from the broker's own answers. A PubAck names
 * the stream sequence a write was stored at, and a delivery names the sequence a message was read
 * from (the workers record it in every ledger write, the DLQ in every entry). A write was lost when
 *  - its stream ends below that sequence at the end of the run (its last sequence went backwards), or
 *  - the stream now holds another message at that sequence (the ledger, the DLQ: nothing is removed
 *    from them during a run), or no message at all (the DLQ), or
 *  - the broker acknowledged another message at that same sequence later (it issued it twice), or
 *    delivered another message from it (ORDERS: seen when its replicas diverged, nats-server 2.9.10,
 *    and its acked messages are removed, so this is the only way to see it),
 * and, for an order, the broker never delivered it from anywhere: one it delivered from another
 * sequence was renumbered, not lost. None of these can be caused by a client: in a stream that keeps
 * what it acknowledged, one sequence holds one message.
 */
import type { AckedWrite } from "../pipeline/acked-writes.js";
import type { HistoryEvent } from "../pipeline/history.js";

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

/** An order the broker delivered (or the DLQ mover read) from an ORDERS sequence. */
export interface Delivery {
  id: string;
  seq: number;
}

export interface LostWrite extends AckedWrite {
  proof: string;
}

export interface BrokerFindings {
  lost: LostWrite[];
  /** Orders delivered from a sequence other than the one their PubAck named (ORDERS' replicas disagreed). */
  renumbered: string[];
}

type Witness = AckedWrite & { at?: number };

export function brokerFindings(history: HistoryEvent[], deliveries: Delivery[], evidence: BrokerEvidence): BrokerFindings {
  const acked: Witness[] = [...evidence.acked];
  for (const e of history) if (e.type === "ok") acked.push({ stream: "orders", seq: e.seq, id: e.id, at: e.time });
  const ackedAt = group(acked);
  const deliveredAt = new Map<number, Set<string>>();
  const deliveredSeqs = new Map<string, Set<number>>();
  for (const d of deliveries) {
    (deliveredAt.get(d.seq) ?? deliveredAt.set(d.seq, new Set()).get(d.seq)!).add(d.id);
    (deliveredSeqs.get(d.id) ?? deliveredSeqs.set(d.id, new Set()).get(d.id)!).add(d.seq);
  }
  const lost = new Map<string, LostWrite>();
  for (const w of acked) {
    const key = `${w.stream}:${w.seq}:${w.id}`;
    if (lost.has(key)) continue;
    // An order the broker delivered did what its write was for, from whichever sequence.
    if (w.stream === "orders" && deliveredSeqs.has(w.id)) continue;
    const proof = proveLost(
      w,
      evidence.end[w.stream],
      ackedAt.get(`${w.stream}:${w.seq}`) ?? [],
      w.stream === "orders" ? deliveredAt.get(w.seq) : undefined,
    );
    if (proof) lost.set(key, { stream: w.stream, seq: w.seq, id: w.id, proof });
  }
  const ackedSeqs = new Map<string, Set<number>>();
  for (const w of acked) if (w.stream === "orders") (ackedSeqs.get(w.id) ?? ackedSeqs.set(w.id, new Set()).get(w.id)!).add(w.seq);
  const renumbered = [...deliveredSeqs]
    .filter(([id, seqs]) => ackedSeqs.has(id) && [...seqs].some((s) => !ackedSeqs.get(id)!.has(s)))
    .map(([id]) => id);
  return { lost: [...lost.values()], renumbered };
}

function group(writes: Witness[]): Map<string, Witness[]> {
  const by = new Map<string, Witness[]>();
  for (const w of writes) {
    const key = `${w.stream}:${w.seq}`;
    by.set(key, [...(by.get(key) ?? []), w]);
  }
  return by;
}

function proveLost(w: Witness, end: StreamEnd | undefined, sameSeq: Witness[], deliveredThere: Set<string> | undefined): string | undefined {
  if (end && w.seq > end.lastSeq) return `${w.stream} ends at seq ${end.lastSeq}, below the acknowledged seq ${w.seq}`;
  const now = end?.held?.get(w.seq);
  if (now !== undefined && now !== w.id) return `${w.stream} seq ${w.seq} now holds ${now}`;
  if (now === undefined && end?.complete) return `${w.stream} no longer holds seq ${w.seq}`;
  const other = [...(deliveredThere ?? [])].find((id) => id !== w.id);
  if (other !== undefined) return `${w.stream} delivered ${other} from seq ${w.seq}, acknowledged for this one`;
  // Acknowledged again, later, for another message: the sequence was issued twice.
  const later = sameSeq.find((o) => o.id !== w.id && o.at !== undefined && w.at !== undefined && o.at > w.at);
  if (later) return `${w.stream} seq ${w.seq} was acknowledged again, later, for ${later.id}`;
  return undefined;
}
