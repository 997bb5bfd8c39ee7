/**
 * A count of operations in flight with one waiter: the loop that starts them waits for room, each
 * operation calls done() when it ends. One waiter is enough (only that loop waits), and it is checked
 * and set in the same synchronous step as the count, so no wake-up is missed.
 */
export class InFlight {
  private count = 0;
  private waiter?: () => void;

  get size(): number {
    return this.count;
  }

  add(): void {
    this.count++;
  }

  done(): void {
    this.count--;
    this.waiter?.();
    this.waiter = undefined;
  }

  /** Resolves once fewer than `limit` are in flight. */
  async below(limit: number): Promise<void> {
    while (this.count >= limit) await new Promise<void>((resolve) => (this.waiter = resolve));
  }

  /** Resolves once nothing is in flight. */
  drained(): Promise<void> {
    return this.below(1);
  }
}
