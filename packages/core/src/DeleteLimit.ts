/**
 * How many deletes a plan may make before it is refused: the safeguard every `plan --prune` shares (WeCom users,
 * Feishu departments). By default a plan deleting more than 50 and more than 20% of what the vendor holds of a kind is
 * refused (WeCom `replace_user`'s rule, which Google Cloud Directory Sync and Authing's sync centre also follow in
 * spirit: a roster that suddenly lacks a fifth of the school is more likely a truncated export than a real change);
 * `--max-delete N` or `--max-delete P%` replaces that limit.
 *
 * @since 0.4.0
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/**
 * A delete limit: at most `count` deletes of a kind, or at most `percent` % of what the vendor holds of that kind.
 *
 * @since 0.4.0
 * @category models
 */
export type MaxDelete =
  | { readonly _tag: "Count"; readonly count: number }
  | { readonly _tag: "Percent"; readonly percent: number }

const pattern = /^(?:(\d{1,9})|(\d{1,3}(?:\.\d{1,6})?)%)$/

/**
 * Reads a `--max-delete` value: `N` (a count) or `P%` (a percentage, at most 100).
 *
 * @since 0.4.0
 * @category constructors
 */
export const parse = (text: string): Result.Result<MaxDelete, string> => {
  const match = pattern.exec(text.trim())
  if (match === null) {
    return Result.fail(`must be a count (120) or a percentage (25%), got ${JSON.stringify(text)}`)
  }
  if (match[1] !== undefined) return Result.succeed({ _tag: "Count", count: Number(match[1]) })
  const percent = Number(match[2])
  return percent > 100
    ? Result.fail(`is ${percent}%; a percentage is at most 100%`)
    : Result.succeed({ _tag: "Percent", percent })
}

/**
 * Writes a limit as {@link parse} reads it.
 *
 * @since 0.4.0
 * @category formatting
 */
export const format = (max: MaxDelete): string => max._tag === "Count" ? String(max.count) : `${max.percent}%`

/**
 * The deletes allowed of a kind the vendor holds `current` of: `max` when given, else the default rule (refuse more
 * than 50 and more than 20%), i.e. at most the larger of 50 and 20%.
 *
 * @since 0.4.0
 * @category limits
 */
export const allowed = (current: number, max?: MaxDelete | undefined): number => {
  // The epsilon keeps 2.3% of 3000 at 69 despite binary floating point (2.3 * 3000 / 100 = 68.99999999999999).
  const percentOf = (percent: number) => Math.floor((percent * current) / 100 + 1e-9)
  if (max === undefined) return Math.max(50, percentOf(20))
  return max._tag === "Count" ? max.count : percentOf(max.percent)
}

/**
 * The delete count of one kind against its limit: refused when `deletes > allowed`.
 *
 * @since 0.4.0
 * @category schemas
 */
export const Counted = Schema.Struct({
  deletes: Schema.Int,
  current: Schema.Int,
  allowed: Schema.Int
})

/**
 * @since 0.4.0
 * @category models
 */
export type Counted = typeof Counted.Type

/**
 * Whether a plan file's recorded limit is the one its own deletes and `maxDelete` give: a file edited by hand
 * (fewer deletes recorded, a raised `allowed`) is refused rather than trusted.
 *
 * @since 0.4.0
 * @category limits
 */
export const consistent = (limit: Counted, deletes: number, max: MaxDelete | undefined): boolean =>
  limit.deletes === deletes && limit.allowed === allowed(limit.current, max)

/**
 * `" (12.5%)"`: a share of a total for messages, empty when the total is 0.
 *
 * @since 0.4.0
 * @category formatting
 */
export const percentText = (n: number, of: number): string => of === 0 ? "" : ` (${Math.round((n * 1000) / of) / 10}%)`
