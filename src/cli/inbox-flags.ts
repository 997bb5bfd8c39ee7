/** The PostgreSQL inbox's flags, shared by the commands that read or write it. */
import { Flags } from "@oclif/core";
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

export function inboxFrom(flags: { inbox?: string; "inbox-table": string }): InboxTarget | undefined {
  if (!flags.inbox) return undefined;
  describeInboxUrl(flags.inbox);
  return { url: flags.inbox, table: checkTableName(flags["inbox-table"]) };
}
