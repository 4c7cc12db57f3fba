/**
 * Text measures that vendor limits are written in: UTF-8 bytes (WeCom "字节") and characters counted as Unicode
 * code points (WeCom/Feishu "字符"). JavaScript's `.length` counts UTF-16 units and is wrong for both: "😀" has
 * `.length` 2, 1 code point and 4 UTF-8 bytes; "张" has `.length` 1, 1 code point and 3 UTF-8 bytes.
 *
 * @since 0.1.0
 */

/**
 * Number of bytes `s` occupies encoded as UTF-8, computed without allocating a buffer. Lone surrogates count as
 * 3 bytes, as `TextEncoder` would encode them as U+FFFD.
 *
 * @since 0.1.0
 * @category measures
 */
export const utf8ByteLength = (s: string): number => {
  let bytes = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

/**
 * Number of Unicode code points in `s` (a surrogate pair counts once).
 *
 * @since 0.1.0
 * @category measures
 */
export const codePointLength = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
    n++
  }
  return n
}

/**
 * Position, in Unicode code points, of the first lone surrogate in `s`, or -1 when `s` is well-formed Unicode. A
 * lone surrogate cannot be encoded as UTF-8: JSON input can hold one (an escape such as `"\ud800"`), and a vendor
 * refuses the whole request that carries it, not just the row.
 *
 * @since 0.2.0
 * @category measures
 */
export const firstLoneSurrogate = (s: string): number => {
  if (s.isWellFormed()) return -1
  let n = 0
  for (let i = 0; i < s.length; i++, n++) {
    const c = s.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++
        continue
      }
    }
    return n
  }
  return -1
}

/**
 * Whether `s` is empty or holds only white space (`String.prototype.trim`'s: ASCII spaces and line breaks, tabs,
 * no-break and full-width spaces, the byte order mark). Such a value looks empty to a person but not to a vendor.
 *
 * @since 0.2.0
 * @category measures
 */
export const isBlank = (s: string): boolean => {
  if (s.length === 0) return true
  // A value whose first character is not white space is not blank: most are ruled out without calling trim().
  return isSpaceAt(s, 0) && s.trim().length === 0
}

/**
 * Whether the UTF-16 unit at `i` may be white space as `String.prototype.trim` sees it (it may answer true for a
 * control character, never false for a space): a cheap test before calling `trim()`.
 *
 * @since 0.2.0
 * @category measures
 */
export const isSpaceAt = (s: string, i: number): boolean => {
  const c = s.charCodeAt(i)
  return c <= 0x20 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
}

/**
 * A yes/no cell as both the CLI and a vendor row schema read it: `true`, `false`, `1` or `0`, in any case, spaces
 * around ignored; `undefined` for anything else (see {@link notYesNo} for the message).
 *
 * @since 0.2.0
 * @category parsing
 */
export const yesNo = (raw: string): boolean | undefined => {
  const normalized = raw.trim().toLowerCase()
  return normalized === "true" || normalized === "1"
    ? true
    : normalized === "false" || normalized === "0"
    ? false
    : undefined
}

/**
 * Why `raw` is not a yes/no value, worded to follow a field name.
 *
 * @since 0.2.0
 * @category parsing
 */
export const notYesNo = (raw: string): string => `must be true or false (or 1 or 0), got ${JSON.stringify(raw)}`
