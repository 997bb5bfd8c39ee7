/** The HTTP gateway's flags that more than one command reads: the key retention and the bearer tokens. */
import { readFileSync } from "node:fs";
import { Flags } from "@oclif/core";
import * as defaults from "../core/base/defaults.js";
import { formatDuration } from "../core/base/duration.js";
import { duration } from "./flags.js";
import { InputError, errorMessage } from "../core/base/errors.js";

export const intakeRetentionFlag = {
  "intake-retention": duration({
    summary: `How long the intake gateway's key store remembers an idempotency key and its answer [default: ${formatDuration(defaults.INTAKE.keyRetentionMs)}, or the duplicate window if longer].`,
    minMs: 1,
    helpGroup: "TOPOLOGY",
  }),
};

/** The chosen retention (ms), or undefined for the default (see intakeRetentionMs in topology.ts). */
export function intakeRetentionFrom(flags: { "intake-retention"?: number }): number | undefined {
  return flags["intake-retention"];
}

export const API_TOKEN_ENV = "ORDERQ_API_TOKEN";

export const tokenFlags = {
  "api-token": Flags.string({
    summary: "Bearer token a client must send (Authorization: Bearer <token>).",
    description: `Give it in ${API_TOKEN_ENV} or --api-tokens-file rather than on the command line: a process's arguments are visible to every user of the machine.`,
    env: API_TOKEN_ENV,
    helpGroup: "AUTH",
  }),
  "api-tokens-file": Flags.string({
    summary: "File of bearer tokens, one a line (blank lines and # comments ignored); any of them lets a client in.",
    helpGroup: "AUTH",
  }),
};

/**
 * The bearer tokens the flags give (none: no authentication). A token is never part of a message:
 * a bad file is named by its path and line number only.
 */
export function tokensFrom(flags: { "api-token"?: string; "api-tokens-file"?: string }): string[] {
  const tokens: string[] = [];
  if (flags["api-token"] !== undefined) tokens.push(flags["api-token"].trim());
  const file = flags["api-tokens-file"];
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new InputError(`--api-tokens-file: cannot read ${file}: ${errorMessage(err)}`);
    }
    text.split(/\r?\n/).forEach((line, i) => {
      const token = line.trim();
      if (token === "" || token.startsWith("#")) return;
      // RFC 6750's b64token: what a client can send after "Bearer ".
      if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token))
        throw new InputError(`--api-tokens-file: ${file}, line ${i + 1}: not a bearer token (A-Z a-z 0-9 - . _ ~ + / then =)`);
      tokens.push(token);
    });
    if (tokens.length === 0) throw new InputError(`--api-tokens-file: ${file} holds no token`);
  }
  for (const token of tokens)
    if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) throw new InputError(`--api-token: not a bearer token (A-Z a-z 0-9 - . _ ~ + / then =)`);
  return tokens;
}
