/**
 * Replacing secrets in text: the report (`Report.redactJson`, inside JSON string values) and every printed line
 * (`internal/terminal.ts`) share it. The forms and the threshold are core's `Scrub`, which the vendor clients use on
 * every vendor message, so a secret is recognised the same way everywhere. Imported by path (`@dirsync/core/Scrub`
 * imports nothing), so the top-level error printer costs no start-up time.
 */
import * as Scrub from "@dirsync/core/Scrub"

/** What a secret is replaced with. */
export const redactedText = Scrub.redacted

/**
 * Secrets shorter than this are not looked for: a one-character "secret" would rewrite every text it occurs in, and
 * no credential or token the vendors issue is this short.
 */
export const minSecretLength = Scrub.minLength

/** Every form a secret can take in output (as written, JSON-escaped, URL-encoded), longest first. */
export const secretForms = (secrets: ReadonlyArray<string>): ReadonlyArray<string> =>
  [...new Set(secrets.flatMap(Scrub.forms))].toSorted((a, b) => b.length - a.length)

/** `text` with every form of every secret replaced by {@link redactedText}. */
export const redact: (text: string, secrets: ReadonlyArray<string>) => string = Scrub.text
