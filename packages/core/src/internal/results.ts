/**
 * What a vendor answered, as row outcomes: its per-item results matched back to the rows sent, a failed chunk as
 * one failed outcome per row, and which failures stop the run instead.
 *
 * @since 0.2.0
 */
import type { ItemResult, Valid } from "../Endpoint.ts"
import { LocalReason, type RowOutcome } from "../Outcome.ts"
import * as VendorError from "../VendorError.ts"

/**
 * Whether a failure should stop the whole run rather than fail one chunk: anything that is not a vendor failure (a
 * bug), and credentials, permissions, or a token that stayed invalid after its one refresh.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isFatal = (e: unknown): boolean => {
  if (!VendorError.isVendorFailure(e)) return true
  const tag = e.reason._tag
  return tag === "Credential" || tag === "PermissionDenied" || tag === "TokenInvalid"
}

/**
 * Every row of a chunk the vendor refused as a whole, failed with the vendor's code and reason. A failure that may
 * hide work the vendor did (`VendorError.isOutcomeUnknown`) gets reason `OutcomeUnknown`, whatever its vendor
 * reason: the rows may have been applied, so the journal keeps them unresolved and a resume verifies them first.
 *
 * @since 0.2.0
 * @category outcomes
 */
export const failedChunk = (
  rows: ReadonlyArray<{ readonly row: number; readonly id: string }>,
  e: VendorError.VendorFailure
): ReadonlyArray<RowOutcome> => {
  const unknown = VendorError.isOutcomeUnknown(e)
  const message = unknown
    ? `${VendorError.describe(e)}; the vendor may or may not have applied this row`
    : VendorError.describe(e)
  return rows.map((r): RowOutcome => ({
    row: r.row,
    id: r.id,
    status: "failed",
    // 0 marks a failure with no vendor code (a dropped connection, a timeout); 0 means success to both vendors.
    code: e.code === 0 ? undefined : e.code,
    reason: unknown ? LocalReason.OutcomeUnknown : e.reason._tag,
    message
  }))
}

const noResult = "the vendor returned no result for this row"

const toOutcome = <Item>(v: Valid<Item>, r: ItemResult | undefined): RowOutcome => {
  if (r === undefined) {
    return { row: v.row, id: v.id, status: "failed", reason: LocalReason.NoResult, message: noResult }
  }
  // Only the outcome's own fields: whatever else a vendor module put in its result stays out of the report.
  const o: { -readonly [K in keyof RowOutcome]: RowOutcome[K] } = { row: v.row, id: v.id, status: r.status }
  if (r.code !== undefined) o.code = r.code
  if (r.reason !== undefined) o.reason = r.reason
  if (r.message !== undefined) o.message = r.message
  if (r.result !== undefined) o.result = r.result
  return o
}

/**
 * The vendor's per-item results as outcomes, one per sent row and in the same order, whatever order it answered in.
 *
 * @since 0.2.0
 * @category outcomes
 */
export const outcomesOf = <Item>(
  sent: ReadonlyArray<Valid<Item>>,
  results: ReadonlyArray<ItemResult>
): ReadonlyArray<RowOutcome> => {
  // Vendors usually answer in request order: match by position, and fall back to a lookup when they do not.
  let inOrder = results.length === sent.length
  for (let i = 0; inOrder && i < sent.length; i++) inOrder = results[i]!.row === sent[i]!.row
  if (inOrder) return sent.map((v, i) => toOutcome(v, results[i]))
  const byRow = new Map<number, ItemResult>()
  for (const r of results) byRow.set(r.row, r)
  return sent.map((v) => toOutcome(v, byRow.get(v.row)))
}
