/**
 * Row-number sets and the data comparison the pipeline's passes share.
 *
 * @since 0.2.0
 */

// =============================================================================
// RowSet
// =============================================================================

/**
 * A set of row numbers that can also be walked in ascending order (the reorder buffer's expected rows).
 *
 * @since 0.2.0
 * @category models
 */
export interface RowSet {
  readonly add: (row: number) => void
  readonly has: (row: number) => boolean
  /** The smallest member greater than `after`, or `undefined` when there is none. */
  readonly next: (after: number) => number | undefined
}

const isSmallRow = (row: number) => Number.isInteger(row) && row >= 0 && row < 2 ** 31

/** The first set bit at or after `from` in `bits`, or -1. Skips empty bytes whole, so gaps cost little. */
const nextBit = (bits: Uint8Array, from: number): number => {
  let i = from >>> 3
  if (i >= bits.length) return -1
  let byte = bits[i]! >>> (from & 7)
  if (byte !== 0) return from + 31 - Math.clz32(byte & -byte)
  for (i++; i < bits.length; i++) {
    byte = bits[i]!
    if (byte !== 0) return i * 8 + 31 - Math.clz32(byte & -byte)
  }
  return -1
}

/** The bitmap always may grow to this many bytes (half a million rows), whatever the members. */
const minBitmapBytes = 64 * 1024

/**
 * A set of row numbers: a bitmap for the usual small non-negative integers (a million rows cost 125 kB), and a plain
 * Set for anything else.
 *
 * The bitmap grows only as far as the members fill it (at most 2 bytes per member beyond its first 64 kB): one huge
 * row number in a small input goes to the Set, rather than sizing the bitmap to it (2³¹ rows would cost 256 MB).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeRowSet = (): RowSet => {
  let bits = new Uint8Array(1024)
  let members = 0
  const other = new Set<number>()
  // Members outside the bitmap, sorted, for `next`; rebuilt only after an `add` of such a row.
  let otherSorted: ReadonlyArray<number> | undefined
  const nextOther = (after: number): number | undefined => {
    if (other.size === 0) return undefined
    const sorted = (otherSorted ??= [...other].toSorted((a, b) => a - b))
    // Binary search: a sparse input may put many rows here, and `next` is called once per row.
    let lo = 0
    let hi = sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (sorted[mid]! > after) hi = mid
      else lo = mid + 1
    }
    return sorted[lo]
  }
  const inBits = (row: number) =>
    isSmallRow(row) && row >>> 3 < bits.length && (bits[row >>> 3]! & (1 << (row & 7))) !== 0
  return {
    add: (row) => {
      members++
      const i = row >>> 3
      const limit = Math.max(minBitmapBytes, members * 2)
      if (!isSmallRow(row) || (i >= bits.length && i >= limit)) {
        if (inBits(row) || other.has(row)) return
        other.add(row)
        otherSorted = undefined
        return
      }
      if (i >= bits.length) {
        const grown = new Uint8Array(Math.min(Math.max(bits.length * 2, i + 1), limit))
        grown.set(bits)
        bits = grown
      }
      bits[i]! |= 1 << (row & 7)
    },
    has: (row) => inBits(row) || (other.size > 0 && other.has(row)),
    next: (after) => {
      const from = after < 0 ? 0 : Math.floor(after) + 1
      const small = from < 2 ** 31 ? nextBit(bits, from) : -1
      const odd = nextOther(after)
      if (small < 0) return odd
      return odd !== undefined && odd < small ? odd : small
    }
  }
}

// =============================================================================
// sameData
// =============================================================================

const isPlainObject = (u: object): u is Record<string, unknown> => Object.getPrototypeOf(u) === Object.prototype

/**
 * Whether two values are the same JSON-like data: primitives, arrays, and plain objects compared key by key in any
 * order. Anything else (a class instance, a Date, a Map) is never the same as another value.
 *
 * Not `Equal.equals`: it ignores prototypes (a decoded class instance would equal the plain object it came from, and
 * pass 2 would send the plain object), and it caches a hash per object in a WeakMap, twice per row of every run.
 *
 * @since 0.2.0
 * @category predicates
 */
export const sameData = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false
    return true
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false
  let keys = 0
  for (const key in a) {
    if (!Object.hasOwn(a, key)) continue
    if (!Object.hasOwn(b, key) || !sameData(a[key], b[key])) return false
    keys++
  }
  for (const key in b) if (Object.hasOwn(b, key)) keys--
  return keys === 0
}
