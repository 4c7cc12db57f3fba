/**
 * A set of row numbers as bits, one per input row: cheap for a million rows, grown as rows arrive. The report writer
 * uses it to write each row once, the runner to know which rows a stopped run never reported.
 */
export interface RowBits {
  /** Adds the row; `false` when it was there already or is not a row number (negative, not a safe integer). */
  readonly add: (row: number) => boolean
  readonly has: (row: number) => boolean
}

export const makeRowBits = (): RowBits => {
  let bits = new Uint8Array(1024)
  return {
    add: (row) => {
      if (row < 0 || !Number.isSafeInteger(row)) return false
      if (row >= bits.length * 8) {
        let size = bits.length
        while (row >= size * 8) size *= 2
        const grown = new Uint8Array(size)
        grown.set(bits)
        bits = grown
      }
      const byte = row >> 3
      const bit = 1 << (row & 7)
      if ((bits[byte]! & bit) !== 0) return false
      bits[byte] = bits[byte]! | bit
      return true
    },
    has: (row) => row >= 0 && row < bits.length * 8 && (bits[row >> 3]! & (1 << (row & 7))) !== 0
  }
}
