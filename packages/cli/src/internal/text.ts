/**
 * Byte- and text-level helpers for the input readers (locating invalid UTF-8, measuring JSON nesting, turning
 * positions into line numbers) and for what the CLI prints (counts, byte sizes, errno words). Pure functions, no
 * Effect.
 */
import { isUtf8 } from "node:buffer"

export { isUtf8 }

/** Offset of the first byte that starts an invalid UTF-8 sequence, or -1 when all of `bytes` is valid. */
export const firstInvalidUtf8 = (bytes: Uint8Array): number => {
  let i = 0
  const n = bytes.length
  while (i < n) {
    const b = bytes[i]!
    if (b < 0x80) {
      i++
      continue
    }
    let need: number
    let min: number
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1
      min = 0x80
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2
      min = 0x800
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3
      min = 0x10000
    } else return i
    if (i + need >= n) return i // truncated sequence at the end
    let cp = b & (0x3f >> need)
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]
      if (c === undefined || (c & 0xc0) !== 0x80) return i
      cp = (cp << 6) | (c & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i
    i += need + 1
  }
  return -1
}

/** 1-based line of a byte (or character) offset: one plus the number of `\n` before it. */
export const lineAt = (text: Uint8Array | string, offset: number): number => {
  let line = 1
  if (typeof text === "string") {
    let i = text.indexOf("\n")
    while (i !== -1 && i < offset) {
      line++
      i = text.indexOf("\n", i + 1)
    }
    return line
  }
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === 0x0a) line++
  return line
}

/**
 * The deepest nesting of arrays/objects in JSON text (strings skipped), stopping early once `limit` is exceeded:
 * refusing absurd nesting before `JSON.parse` gives a clear message instead of an engine-specific failure.
 */
export const jsonDepthExceeds = (text: string, limit: number): { readonly exceeded: boolean; readonly at: number } => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      depth++
      if (depth > limit) return { exceeded: true, at: i }
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return { exceeded: false, at: -1 }
}

/**
 * `JSON.parse` with its failure turned into a short sentence (V8 quotes a slice of the input in its messages;
 * that slice is dropped) and, when V8 names a position, the line and column.
 */
/**
 * Where JSON text first stops being valid JSON, for V8 messages that give no position (`Unexpected token ']'`).
 * A small recursive-descent scan; `undefined` when the text is valid.
 */
export const syntaxErrorOffset = (text: string): number | undefined => {
  let i = 0
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++
  }
  const literal = (word: string) => {
    if (text.startsWith(word, i)) {
      i += word.length
      return true
    }
    return false
  }
  const string = (): boolean => {
    i++ // opening quote
    while (i < text.length) {
      const c = text[i]!
      if (c === "\"") {
        i++
        return true
      }
      if (c === "\\") i++
      else if (c < " ") return false
      i++
    }
    return false
  }
  const number = (): boolean => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m === null) return false
    i += m[0].length
    return true
  }
  const value = (depth: number): boolean => {
    ws()
    const c = text[i]
    if (depth > 10_000) return false
    if (c === "{") {
      i++
      ws()
      if (text[i] === "}") return (i++, true)
      for (;;) {
        ws()
        if (text[i] !== "\"" || !string()) return false
        ws()
        if (text[i] !== ":") return false
        i++
        if (!value(depth + 1)) return false
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "}") return (i++, true)
        else return false
      }
    }
    if (c === "[") {
      i++
      ws()
      if (text[i] === "]") return (i++, true)
      for (;;) {
        if (!value(depth + 1)) return false
        ws()
        if (text[i] === ",") i++
        else if (text[i] === "]") return (i++, true)
        else return false
      }
    }
    if (c === "\"") return string()
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return number()
    return literal("true") || literal("false") || literal("null")
  }
  if (!value(0)) return Math.min(i, text.length)
  ws()
  return i < text.length ? i : undefined
}

export const parseJson = (
  text: string
): { readonly ok: true; readonly value: unknown } | {
  readonly ok: false
  readonly message: string
  readonly line?: number
  readonly column?: number
} => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (e) {
    const raw = e instanceof Error ? e.message : String(e)
    // V8 quotes (a slice of) the input in some messages: never echo it, it may span lines or hold personal data.
    const message = raw.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, "").replace(
      / in JSON at position \d+.*$/s,
      ""
    )
    const position = /at position (\d+)/.exec(raw)
    const offset = position === null ? syntaxErrorOffset(text) : Number(position[1])
    if (offset === undefined) return { ok: false, message }
    const line = lineAt(text, offset)
    const lineStart = text.lastIndexOf("\n", offset - 1) + 1
    return { ok: false, message, line, column: offset - lineStart + 1 }
  }
}

/** What a JSON value is, in words, for messages such as `item 3 is a number, not an object`. */
export const describeJson = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  switch (typeof value) {
    case "string":
      return "a string"
    case "number":
      return "a number"
    case "boolean":
      return "a boolean"
    default:
      return "an object"
  }
}

/**
 * A count as the CLI prints it, with comma thousands: `12,345`, exactly what `n.toLocaleString("en-US")` gives.
 * Not that call itself: its first use in a process loads ICU's number formatting, 15–30 ms of every run's start-up
 * (docs/PERFORMANCE.md, "Issue 16: start-up regained"). Anything but a safe integer goes to it unchanged.
 */
export const count = (n: number): string => {
  if (!Number.isSafeInteger(n) || Object.is(n, -0)) return n.toLocaleString("en-US")
  const digits = String(Math.abs(n))
  let out = digits.slice(0, digits.length % 3 || 3)
  for (let i = out.length; i < digits.length; i += 3) out += `,${digits.slice(i, i + 3)}`
  return n < 0 ? `-${out}` : out
}

/** Formats a byte count for messages: `1 MB`, `256 MB`, `512 KB`. */
export const formatBytes = (n: number): string => {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000} MB`
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)} MB`
  if (n >= 1000) return `${Math.round(n / 1000)} KB`
  return `${n} bytes`
}

/** Errno codes in words, for messages about files. */
export const WORDS: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ENOTDIR: "a part of the path is not a directory",
  EISDIR: "is a directory",
  EEXIST: "already exists",
  EIO: "input/output error",
  EMFILE: "too many open files",
  ENAMETOOLONG: "file name too long",
  ELOOP: "too many symbolic links"
}

/** Effect platform error tags in words. */
export const TAG_WORDS: Readonly<Record<string, string>> = {
  NotFound: "no such file or directory",
  PermissionDenied: "permission denied",
  AlreadyExists: "already exists",
  BadResource: "not a usable file",
  Busy: "the file is busy",
  InvalidData: "invalid data",
  TimedOut: "timed out",
  UnexpectedEof: "the file ended unexpectedly",
  WriteZero: "nothing could be written",
  WouldBlock: "the file is not ready"
}

/** An errno code (`ENOSPC`) or a platform error tag (`BadResource`) in words; anything else as it is. */
export const fsWords = (reason: string): string => WORDS[reason] ?? TAG_WORDS[reason] ?? reason
