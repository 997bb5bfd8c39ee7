/**
 * Writes a worker got a PubAck for, as lines of its trace log: the chaos checker's evidence that the
 * broker acknowledged a ledger write or a DLQ copy. If the stream later does not hold it there, the
 * broker lost an acknowledged write — proven from the broker's own answers, not from orderq's word
 * that it did the right thing next. One format, written and read here.
 */

/** The streams a worker writes to: the ledger's KV stream and the DLQ. */
export type WorkerStream = "ledger" | "dlq";

export interface AckedWrite {
  stream: WorkerStream | "orders";
  seq: number;
  /** The ledger key (order id); for a DLQ copy the order id, or `seq:<ORDERS seq>` for a payload without one. */
  id: string;
}

export function ackedWriteLine(stream: WorkerStream, seq: number, id: string): string {
  return `acked ${stream} seq=${seq} id=${id}`;
}

const LINE = /acked (ledger|dlq) seq=(\d+) id=(\S+)/;

/** The acknowledged writes in a trace log; other lines are skipped. */
export function parseAckedWrites(log: string): AckedWrite[] {
  const writes: AckedWrite[] = [];
  for (const line of log.split("\n")) {
    const m = LINE.exec(line);
    if (m) writes.push({ stream: m[1] as WorkerStream, seq: Number(m[2]), id: m[3] });
  }
  return writes;
}
