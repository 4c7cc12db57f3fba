/**
 * Scrubbing secrets out of text a vendor sent back: both clients pass every vendor message through one
 * {@link Scrubber} holding the app secret and every token the client was issued, so a vendor that echoes a
 * credential (in its `msg`, a gateway page, a transport error quoting the request) cannot put it in an error, a
 * report, a journal or on the terminal.
 *
 * **Details**
 *
 * - Each secret is removed in every form a reply may carry it: as written, URL-encoded (`%2B`, and `+` for a space as
 *   forms encode it) and JSON-escaped (inside a string of a JSON body).
 * - Values shorter than {@link minLength} are not scrubbed: they would redact innocent text, and real secrets and
 *   tokens are long.
 *
 * @since 0.2.0
 */

/**
 * What a scrubbed secret becomes.
 *
 * @since 0.2.0
 * @category constants
 */
export const redacted = "<redacted>"

/**
 * Shortest value scrubbed.
 *
 * @since 0.2.0
 * @category constants
 */
export const minLength = 6

/**
 * Every form of `secret` a reply may carry: as written, URL-encoded, form-encoded and JSON-escaped, longest first.
 *
 * @since 0.2.0
 * @category redaction
 */
export const forms = (secret: string): ReadonlyArray<string> => {
  if (secret.length < minLength) return []
  const url = encodeURIComponent(secret)
  const all = new Set([
    secret,
    url,
    url.replaceAll("%20", "+"),
    // Lower-case percent escapes: some encoders write them so.
    url.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    JSON.stringify(secret).slice(1, -1)
  ])
  return [...all].toSorted((a, b) => b.length - a.length)
}

/**
 * Replaces every form of every secret in `text` with {@link redacted}.
 *
 * @since 0.2.0
 * @category redaction
 */
export const text = (input: string, secrets: Iterable<string>): string => {
  const all = [...secrets].flatMap(forms).toSorted((a, b) => b.length - a.length)
  let out = input
  for (const form of all) if (out.includes(form)) out = out.split(form).join(redacted)
  return out
}

/**
 * A client's scrubber: the secrets it knows grow as tokens are issued.
 *
 * @since 0.2.0
 * @category models
 */
export interface Scrubber {
  /** Adds a value (a token just issued) to scrub from now on. */
  readonly add: (secret: string) => void
  /** The text with every known secret scrubbed. */
  readonly scrub: (input: string) => string
  /** Whether the text still holds a known secret in any form. */
  readonly leaks: (input: string) => boolean
}

/**
 * A scrubber that starts with `secrets` (the app secret).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (secrets: Iterable<string> = []): Scrubber => {
  const known = new Set<string>()
  let sorted: ReadonlyArray<string> = []
  const add = (secret: string) => {
    if (secret.length < minLength || known.has(secret)) return
    known.add(secret)
    sorted = [...known].flatMap(forms).toSorted((a, b) => b.length - a.length)
  }
  for (const s of secrets) add(s)
  return {
    add,
    scrub: (input) => {
      let out = input
      for (const form of sorted) if (out.includes(form)) out = out.split(form).join(redacted)
      return out
    },
    leaks: (input) => sorted.some((form) => input.includes(form))
  }
}
