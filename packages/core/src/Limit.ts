/**
 * Documented vendor limits as Schema building blocks. Every failure message names the limit and the actual value
 * (`has 33 characters; at most 32`, `is 33 UTF-8 bytes; at most 32`); `Issues.format` prefixes the field path, so a
 * user reads `name has 33 characters; at most 32`.
 *
 * Messages produced here start with a lower-case verb on purpose: `Issues.format` joins them to the field name with a
 * space, and joins other (Effect built-in) messages with a colon.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { codePointLength, firstLoneSurrogate, isBlank, utf8ByteLength } from "./Text.ts"

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`

type Check = (s: string) => string | true

const bytesBetween = (min: number, max: number): Check => (s) => {
  const n = utf8ByteLength(s)
  if (n > max) return `is ${n} UTF-8 bytes; at most ${max}`
  if (n < min) {
    return n === 0
      ? "is empty; at least " + plural(min, "UTF-8 byte")
      : `is ${n} UTF-8 bytes; at least ${min}`
  }
  return true
}

const charactersBetween = (min: number, max: number): Check => (s) => {
  const n = codePointLength(s)
  if (n > max) return `has ${plural(n, "character")}; at most ${max}`
  if (n < min) {
    return n === 0
      ? `is empty; at least ${plural(min, "character")}`
      : `has ${plural(n, "character")}; at least ${min}`
  }
  return true
}

/**
 * UTF-8 byte length between `min` and `max` inclusive (WeCom "字节").
 *
 * @since 0.1.0
 * @category checks
 */
export const isBytesBetween = (min: number, max: number) =>
  Schema.makeFilter<string>(bytesBetween(min, max), { description: `${min} to ${max} UTF-8 bytes` })

/**
 * Character length, counted in Unicode code points, between `min` and `max` inclusive (vendor "字符").
 *
 * @since 0.1.0
 * @category checks
 */
export const isCharactersBetween = (min: number, max: number) =>
  Schema.makeFilter<string>(charactersBetween(min, max), { description: `${min} to ${max} characters` })

const loneSurrogate = (s: string): string | true => {
  const at = firstLoneSurrogate(s)
  if (at < 0) return true
  const unit = [...s][at]!.charCodeAt(0).toString(16).toUpperCase()
  return `is not well-formed Unicode text: character ${at + 1} is a lone surrogate (U+${unit})`
}

// The control characters JSON.stringify writes as a \uXXXX escape (all of U+0000–U+001F but \b \t \n \f \r):
// WeCom refuses the whole request that holds such an escape (errcode 40033), so they are refused like a lone
// surrogate. Checked with one regex per value; the message finds the position.
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const suspect = /[\u0000-\u0007\u000b\u000e-\u001f\ud800-\udfff]/
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const escapedControl = /[\u0000-\u0007\u000b\u000e-\u001f]/

const controlCharacter = (s: string): string => {
  const chars = [...s]
  const at = chars.findIndex((c) => escapedControl.test(c))
  const unit = chars[at]!.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")
  return `contains a control character (U+${unit}) at character ${at + 1}; vendors refuse the whole batch for it`
}

/**
 * Well-formed Unicode text: no lone surrogate (`String.prototype.isWellFormed`). Text read from a file of valid
 * UTF-8 always is; a JSON string escape such as `"\ud800"` is not, and a vendor refuses the whole batch it is in.
 * Every text piece of this module checks it.
 *
 * @since 0.2.0
 * @category checks
 */
export const isWellFormedText = Schema.makeFilter<string>(loneSurrogate, { description: "well-formed Unicode text" })

/**
 * Not only white space, when not empty (length checks report emptiness): a value of spaces looks empty to a person
 * and would set a name to blanks. Every piece of this module with a minimum length of 1 or more checks it.
 *
 * @since 0.2.0
 * @category checks
 */
export const isNotBlank = Schema.makeFilter<string>(
  (s) => s.length === 0 || !isBlank(s) || "holds only spaces",
  { description: "not only spaces" }
)

/**
 * One filter per field, not three: the length check, then (for a minimum of 1 or more) blankness, then
 * well-formedness. Every row of a run decodes through these pieces, so a valid value costs one call.
 */
const textFilter = (min: number, length: Check, unit: string, description: string) =>
  Schema.makeFilter<string>((s) => {
    const measured = length(s)
    if (measured !== true) return measured
    if (min >= 1 && isBlank(s)) return `holds only spaces; at least ${plural(min, unit)}`
    // One test rules out both problems for almost every value (a surrogate pair, e.g. an emoji, looks suspect too).
    if (!suspect.test(s)) return true
    if (!s.isWellFormed()) return loneSurrogate(s)
    return !escapedControl.test(s) || controlCharacter(s)
  }, { description })

/**
 * At most `max` array items.
 *
 * @since 0.1.0
 * @category checks
 */
export const isMaxItems = (max: number) =>
  Schema.makeFilter<ReadonlyArray<unknown>>(
    (a) => a.length <= max || `has ${plural(a.length, "item")}; at most ${max}`,
    { description: `at most ${max} items` }
  )

// The alphabet, written once: the first character, then the rest.
const idFirst = "0-9A-Za-z"
const idRest = `${idFirst}_\\-@.`
const validId = new RegExp(`^[${idFirst}][${idRest}]*$`)
const startsWell = new RegExp(`^[${idFirst}]`)
const outsideAlphabet = new RegExp(`[^${idRest}]`, "u")

/**
 * The id alphabet both vendors document: digits, ASCII letters and `_ - @ .`, the first character a digit or letter.
 *
 * @since 0.1.0
 * @category checks
 */
export const isIdCharset = Schema.makeFilter<string>((s) => {
  if (s.length === 0) return true // length checks report emptiness
  // Every valid id passes this one test; it runs for every row of every pass, so it must not allocate.
  if (validId.test(s)) return true
  // An id of spaces or with a lone surrogate is refused by the alphabet too; these say why in plainer words.
  if (isBlank(s)) return "holds only spaces"
  if (!s.isWellFormed()) return loneSurrogate(s)
  if (!startsWell.test(s)) return `must start with a digit or a letter, got ${JSON.stringify(s.slice(0, 1))}`
  const bad = outsideAlphabet.exec(s)
  return bad === null || `contains ${JSON.stringify(bad[0])}; only digits, letters and _ - @ . are allowed`
}, { description: "digits, letters and _ - @ ., starting with a digit or letter" })

/**
 * How a vendor measures an id's length: WeCom school ids are 1–64 bytes, Feishu department ids 1–64 characters.
 * The charset is ASCII, so both agree on valid ids; they differ only in the message for invalid ones.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Id = (options: { readonly unit: "bytes" | "characters"; readonly max?: number }) => {
  const max = options.max ?? 64
  // The alphabet is ASCII without spaces or control characters: isIdCharset refuses what textFilter would.
  return Schema.String.pipe(
    Schema.check(
      options.unit === "bytes" ? isBytesBetween(1, max) : isCharactersBetween(1, max),
      isIdCharset
    )
  )
}

/**
 * Text of `min` to `max` characters: well-formed, no control character that JSON escapes, and not only spaces
 * when `min` is 1 or more.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Characters = (min: number, max: number) =>
  Schema.String.pipe(
    Schema.check(textFilter(min, charactersBetween(min, max), "character", `${min} to ${max} characters`))
  )

/**
 * Text of `min` to `max` UTF-8 bytes: well-formed, no control character that JSON escapes, and not only spaces
 * when `min` is 1 or more.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Bytes = (min: number, max: number) =>
  Schema.String.pipe(
    Schema.check(textFilter(min, bytesBetween(min, max), "UTF-8 byte", `${min} to ${max} UTF-8 bytes`))
  )

/**
 * Any text, for fields with no documented limit, checked like every piece here: the vendor still refuses a lone
 * surrogate or an escaped control character.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Text = Schema.String.pipe(
  Schema.check(textFilter(0, () => true, "character", "well-formed text without control characters"))
)

/**
 * The key under which vendors compare ids: both treat ids case-insensitively, so `ZhangSan` and `zhangsan` are one.
 *
 * @since 0.1.0
 * @category keys
 */
export const idKey = (id: string): string => id.toLowerCase()
