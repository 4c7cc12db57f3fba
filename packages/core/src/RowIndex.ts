/**
 * Rows per key, kept compactly: the cross-row checks of a run see one key per input row (ids, rename targets), and
 * a 1M-row file must not cost a JS string and a Map entry per row.
 *
 * **Details**
 *
 * - Keys are stored as UTF-8 bytes in one growing byte arena, found through an open-addressing hash table of
 *   typed arrays, outside the JS heap, so the garbage collector neither scans nor copies them. A
 *   `Map<string, number>` with its key strings costs more per key on the heap and, because every key survives, made
 *   V8 grow its young generation to the maximum (docs/PERFORMANCE.md has the figures).
 * - Exact: keys are compared byte for byte, never by hash alone. Keys are compared as given (the caller lower-cases
 *   them for case-insensitive ids).
 * - A key's first row is stored inline; only keys seen more than once get a JS array of their other rows.
 *
 * @since 0.1.0
 */

// =============================================================================
// Models
// =============================================================================

/**
 * @since 0.1.0
 * @category models
 */
export interface RowIndex {
  /** Records that `row` has `key`. */
  readonly add: (key: string, row: number) => void
  /** Every row recorded for `key`, in the order they were added; `undefined` for a key never added. */
  readonly rows: (key: string) => ReadonlyArray<number> | undefined
  /** The keys recorded more than once, with all their rows. */
  readonly repeated: () => IterableIterator<readonly [key: string, rows: ReadonlyArray<number>]>
  /** Every key with all its rows, in the order the keys were first added. */
  readonly entries: () => IterableIterator<readonly [key: string, rows: ReadonlyArray<number>]>
  /** Number of distinct keys. */
  readonly size: () => number
}

// =============================================================================
// Constructors
// =============================================================================

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** FNV-1a over bytes: cheap, and good enough for a table that confirms every match byte for byte. */
const hashBytes = (bytes: Uint8Array, start: number, end: number): number => {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193)
  return h >>> 0
}

const grow = <A extends Uint8Array | Uint32Array | Float64Array>(array: A, min: number): A => {
  let size = Math.max(16, array.length)
  while (size < min) size = Math.ceil(size * 1.5)
  if (size === array.length) return array
  const grown = new (array.constructor as new(n: number) => A)(size)
  grown.set(array)
  return grown
}

/**
 * An empty index.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): RowIndex => {
  // Entries, dense in insertion order: the key's bytes are arena[start[i], start[i + 1]) (the last ends at `used`).
  let hashes = new Uint32Array(0)
  let starts = new Uint32Array(0)
  let firstRows = new Float64Array(0)
  let count = 0
  let arena = new Uint8Array(0)
  let used = 0
  // Slots hold entry index + 1 (0 = empty); the table is at most half full.
  let slots = new Uint32Array(64)
  let mask = slots.length - 1
  const moreRows = new Map<number, Array<number>>()

  const endOf = (entry: number) => (entry + 1 < count ? starts[entry + 1]! : used)

  /** Writes `key` as UTF-8 at `used` (not yet committed) and returns where it ends. */
  const stage = (key: string): number => {
    arena = grow(arena, used + key.length * 3)
    let at = used
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i)
      if (c >= 0x80) return used + encoder.encodeInto(key, arena.subarray(used)).written
      arena[at++] = c
    }
    return at
  }

  const equals = (entry: number, end: number): boolean => {
    const start = starts[entry]!
    const length = endOf(entry) - start
    if (length !== end - used) return false
    for (let i = 0; i < length; i++) if (arena[start + i] !== arena[used + i]) return false
    return true
  }

  /** The entry holding the staged key, or the free slot where it belongs (as a negative number minus one). */
  const find = (hash: number, end: number): number => {
    for (let slot = hash & mask;; slot = (slot + 1) & mask) {
      const held = slots[slot]!
      if (held === 0) return -slot - 1
      if (hashes[held - 1] === hash && equals(held - 1, end)) return held - 1
    }
  }

  const rehash = () => {
    slots = new Uint32Array(slots.length * 2)
    mask = slots.length - 1
    for (let entry = 0; entry < count; entry++) {
      let slot = hashes[entry]! & mask
      while (slots[slot] !== 0) slot = (slot + 1) & mask
      slots[slot] = entry + 1
    }
  }

  const rowsOf = (entry: number): ReadonlyArray<number> => [firstRows[entry]!, ...(moreRows.get(entry) ?? [])]

  const keyOf = (entry: number) => decoder.decode(arena.subarray(starts[entry]!, endOf(entry)))

  const add = (key: string, row: number): void => {
    const end = stage(key)
    const hash = hashBytes(arena, used, end)
    const found = find(hash, end)
    if (found >= 0) {
      const rows = moreRows.get(found)
      if (rows === undefined) moreRows.set(found, [row])
      else rows.push(row)
      return
    }
    if (count === hashes.length) {
      hashes = grow(hashes, count + 1)
      starts = grow(starts, count + 1)
      firstRows = grow(firstRows, count + 1)
    }
    hashes[count] = hash
    starts[count] = used
    firstRows[count] = row
    slots[-found - 1] = ++count
    used = end
    if (count * 2 > slots.length) rehash()
  }

  const rows = (key: string): ReadonlyArray<number> | undefined => {
    const end = stage(key)
    const found = find(hashBytes(arena, used, end), end)
    return found >= 0 ? rowsOf(found) : undefined
  }

  function* repeated(): IterableIterator<readonly [string, ReadonlyArray<number>]> {
    for (const entry of moreRows.keys()) yield [keyOf(entry), rowsOf(entry)]
  }

  function* entries(): IterableIterator<readonly [string, ReadonlyArray<number>]> {
    for (let entry = 0; entry < count; entry++) yield [keyOf(entry), rowsOf(entry)]
  }

  return { add, rows, repeated, entries, size: () => count }
}
