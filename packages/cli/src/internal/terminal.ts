/**
 * What the CLI prints for people (the summary, the problems list, progress, the one `dirsync:` line) comes partly
 * from the input file and the vendor: ids, column names, vendor messages. Printed raw, a control or escape sequence
 * in a cell could clear the screen or set the window title, and a bidi override or a zero-width character could make
 * one id look like another. Everything from outside is escaped here; ids are quoted as well. The JSON report and
 * `--json` output are JSON and need none of this.
 *
 * Secrets are scrubbed here too: every secret and issued token the run knows (registered by the runner) is replaced
 * in every printed line, whatever printed it.
 */
import { redact } from "./redaction.ts"

// C0 and C1 controls, DEL, format characters (bidi controls, zero-width characters, soft hyphen, BOM), line and
// paragraph separators, private-use and unassigned code points, and lone surrogates.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}\p{Cs}]/gu

const escapeOne = (c: string): string => {
  switch (c) {
    case "\n":
      return "\\n"
    case "\r":
      return "\\r"
    case "\t":
      return "\\t"
  }
  const code = c.codePointAt(0)!
  return code <= 0xffff ? `\\u${code.toString(16).padStart(4, "0")}` : `\\u{${code.toString(16)}}`
}

/** Text from outside (a message, a path) with every unsafe character shown as an escape: `\u001b[2J`. */
export const safe = (text: string): string => text.replace(UNSAFE, escapeOne)

/** An id as printed: quoted, backslashes and quotes escaped, unsafe characters escaped. */
export const quote = (id: string): string => `"${id.replace(/["\\]/g, (c) => `\\${c}`).replace(UNSAFE, escapeOne)}"`

const registered: Array<() => ReadonlyArray<string>> = []

/** Adds a source of secrets (read at each print: tokens are issued during the run). */
export const registerSecrets = (secrets: () => ReadonlyArray<string>): void => {
  registered.push(secrets)
}

/** `text` with every registered secret replaced (raw, JSON-escaped or URL-encoded). */
export const scrub = (text: string): string => {
  if (registered.length === 0) return text
  return redact(text, registered.flatMap((f) => f()))
}

/** One printed line from outside text: secrets scrubbed, then unsafe characters escaped. */
export const line = (text: string): string => safe(scrub(text))
