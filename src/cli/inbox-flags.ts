/** The PostgreSQL inbox's flags, shared by the commands that read or write it. */
import { Flags } from "@oclif/core";
import { InputError } from "../core/base/errors.js";
import { describeInboxUrl, INBOX_URL_ENV } from "../core/inbox/connect.js";
import { checkTableName, DEFAULT_INBOX_TABLE } from "../core/inbox/schema.js";

export const inboxFlags = {
  inbox: Flags.string({
    summary: "Inbox mode: postgres:// URL of the database whose inbox table is the ledger of record.",
    description:
      "Give it in ORDERQ_INBOX_URL rather than on the command line when it holds a password: a process's arguments are visible to every user of the machine.",
    env: INBOX_URL_ENV,
    helpGroup: "INBOX",
  }),
  "inbox-table": Flags.string({ summary: "Inbox table name.", default: DEFAULT_INBOX_TABLE, helpGroup: "INBOX" }),
};

/** The inbox a command was given, checked before anything starts (InputError for a bad URL or table name). */
export interface InboxTarget {
  url: string;
  table: string;
}

/** What a command with inboxFlags needs for an inbox setting. */
const INBOX_NEEDED = `an inbox: --inbox or ${INBOX_URL_ENV}`;

/** oclif's raw tokens of a parse: which flags were given on the command line, not defaulted. */
export type RawTokens = ReadonlyArray<{ type: "flag"; flag: string } | { type: "arg" }>;

/**
 * The inbox given by `--inbox` or ORDERQ_INBOX_URL, or undefined. Throws InputError (exit 2) for a bad
 * URL or table name, and when one of `settings` (the inbox flags this command takes besides --inbox)
 * was given on the command line with no inbox to apply it to.
 */
export function inboxFrom(flags: { inbox?: string; "inbox-table": string }, raw: RawTokens, settings = ["inbox-table"]): InboxTarget | undefined {
  refuseWithoutInbox(raw, Boolean(flags.inbox), settings, INBOX_NEEDED);
  if (!flags.inbox) return undefined;
  describeInboxUrl(flags.inbox);
  return { url: flags.inbox, table: checkTableName(flags["inbox-table"]) };
}

/**
 * Refuses (InputError, exit 2) an inbox setting given on the command line when there is no inbox to
 * apply it to: `need` says what would make one (e.g. "an inbox: --inbox or ORDERQ_INBOX_URL"). Only a
 * flag in oclif's raw tokens was given (as `topology ensure` tells its settings); a default is not.
 */
export function refuseWithoutInbox(raw: RawTokens, hasInbox: boolean, settings: string[], need: string): void {
  if (hasInbox) return;
  const given = raw.flatMap((t) => (t.type === "flag" && settings.includes(t.flag) ? [t.flag] : []));
  if (given.length > 0) throw new InputError(`--${given[0]} needs ${need}`);
}
