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
import { codePointLength, utf8ByteLength } from "./Text.ts"

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`

/**
 * UTF-8 byte length between `min` and `max` inclusive (WeCom "字节").
 *
 * @since 0.1.0
 * @category checks
 */
export const isBytesBetween = (min: number, max: number) =>
  Schema.makeFilter<string>((s) => {
    const n = utf8ByteLength(s)
    if (n > max) return `is ${n} UTF-8 bytes; at most ${max}`
    if (n < min) {
      return n === 0
        ? "is empty; at least " + plural(min, "UTF-8 byte")
        : `is ${n} UTF-8 bytes; at least ${min}`
    }
    return true
  }, { description: `${min} to ${max} UTF-8 bytes` })

/**
 * Character length, counted in Unicode code points, between `min` and `max` inclusive (vendor "字符").
 *
 * @since 0.1.0
 * @category checks
 */
export const isCharactersBetween = (min: number, max: number) =>
  Schema.makeFilter<string>((s) => {
    const n = codePointLength(s)
    if (n > max) return `has ${plural(n, "character")}; at most ${max}`
    if (n < min) {
      return n === 0
        ? `is empty; at least ${plural(min, "character")}`
        : `has ${plural(n, "character")}; at least ${min}`
    }
    return true
  }, { description: `${min} to ${max} characters` })

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
export const Id = (options: { readonly unit: "bytes" | "characters"; readonly max?: number }) =>
  Schema.String.pipe(
    Schema.check(
      options.unit === "bytes" ? isBytesBetween(1, options.max ?? 64) : isCharactersBetween(1, options.max ?? 64),
      isIdCharset
    )
  )

/**
 * A non-empty string of at most `max` characters.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Characters = (min: number, max: number) => Schema.String.pipe(Schema.check(isCharactersBetween(min, max)))

/**
 * A string of `min` to `max` UTF-8 bytes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Bytes = (min: number, max: number) => Schema.String.pipe(Schema.check(isBytesBetween(min, max)))

/**
 * The key under which vendors compare ids: both treat ids case-insensitively, so `ZhangSan` and `zhangsan` are one.
 *
 * @since 0.1.0
 * @category keys
 */
export const idKey = (id: string): string => id.toLowerCase()
