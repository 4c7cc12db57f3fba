/**
 * Replacing secrets in text: the report (`Report.redactJson`, inside JSON string values) and every printed line
 * (`internal/terminal.ts`) share it. No imports, so the top-level error printer costs no start-up time.
 */

/** What a secret is replaced with. */
export const redactedText = "<redacted>"

/**
 * Secrets shorter than this are not looked for: a one-character "secret" would rewrite every text it occurs in, and
 * no credential or token the vendors issue is this short.
 */
export const minSecretLength = 6

/** Every form a secret can take in output (as written, JSON-escaped, URL-encoded), longest first. */
export const secretForms = (secrets: ReadonlyArray<string>): ReadonlyArray<string> => {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (secret.length < minSecretLength) continue
    forms.add(secret)
    forms.add(JSON.stringify(secret).slice(1, -1)) // as it appears inside a JSON string
    forms.add(encodeURIComponent(secret)) // as it appears in a URL (a query string a vendor echoes)
  }
  // Longest first, so a secret containing another is replaced whole.
  return [...forms].toSorted((a, b) => b.length - a.length)
}

/** `text` with every form of every secret replaced by {@link redactedText}. */
export const redact = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  for (const form of secretForms(secrets)) if (out.includes(form)) out = out.split(form).join(redactedText)
  return out
}
