/**
 * Splits a stream of text into whole lines: what lets a supervisor print its children's stderr one
 * line at a time through its own line-aware logger, never half a line glued onto its status line.
 */

/** A line longer than this (characters) is passed on in pieces of this size: a child cannot grow the buffer without bound. */
export const MAX_LINE_CHARS = 16 * 1024;

export class LineSplitter {
  private partial = "";

  /** `onLine` gets each line without its line ending (`\n` or `\r\n`). */
  constructor(private readonly onLine: (line: string) => void) {}

  /** Takes the next piece of text; passes on every line it completes. */
  push(text: string): void {
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      const line = this.partial + text.slice(start, nl);
      this.partial = "";
      this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
      start = nl + 1;
    }
    this.partial += text.slice(start);
    while (this.partial.length > MAX_LINE_CHARS) {
      this.onLine(this.partial.slice(0, MAX_LINE_CHARS));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
  }

  /** The end of the stream: a last line without a line ending is passed on too. */
  end(): void {
    if (this.partial === "") return;
    const line = this.partial;
    this.partial = "";
    this.onLine(line);
  }
}
