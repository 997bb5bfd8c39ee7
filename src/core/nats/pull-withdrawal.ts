/**
 * Withdraws an open pull without stranding what the server already sent for it.
 *
 * `ConsumerMessages.stop()` unsubscribes the pull's inbox at once: an order the server sent just before
 * it learnt of the unsubscription is dropped by the client, and sits delivered and unacked until its ack
 * wait runs out (CI saw 3 of them after a Ctrl-C). Draining the inbox's subscription instead sends the
 * unsubscription, then still hands over whatever arrives before the server's answer to the next ping;
 * the library ends the pull's iterator after those. nats-server 2.9 then drops the pull request itself:
 * it delivers only to a pull whose reply subject still has interest.
 *
 * The subscription is a public field of the client's implementation, not of the `ConsumerMessages`
 * interface: when it is missing (another client version), nothing is done and the pull simply runs
 * until it expires.
 */
import type { ConsumerMessages } from "@nats-io/jetstream";

interface Drainable {
  drain(): Promise<void>;
}

/** Returns false when this client's pull has no drainable subscription (the pull then expires). */
export function withdrawPull(pull: ConsumerMessages): boolean {
  const sub = (pull as unknown as { sub?: Partial<Drainable> }).sub;
  if (typeof sub?.drain !== "function") return false;
  sub.drain().catch(() => {
    // The connection is closing or gone: the pull ends with it.
  });
  return true;
}
