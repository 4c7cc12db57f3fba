/**
 * An .xlsx workbook is a zip archive, and `read-excel-file` inflates every XML entry of it into memory at once,
 * trusting the archive: a 1 MB file can inflate to gigabytes (a zip bomb), and an entry can claim a size it does not
 * have. So before the workbook is handed over, this reads its bytes once (what is checked is what is parsed) and walks
 * its entries exactly as `read-excel-file`'s unzipper (`unzipper-esm`'s `Parse`) will: local file headers from the
 * start of the file, each entry's data as that header says (its compressed size, or up to the data-descriptor
 * signature when the header leaves the sizes to a data descriptor), up to the central directory. Every entry the
 * reader keeps (names ending `.xml` or `.xml.rels`) is inflated here and counted, output discarded, stopping as soon
 * as the total passes the limit; a size the header declares counts too (the reader allocates it up front). The
 * central directory plays no part: the reader never looks at it, and neither does an attacker's bomb.
 *
 * Plain Node, no Effect.
 *
 * @internal
 */
import { open } from "node:fs/promises"
import { createInflateRaw } from "node:zlib"
import { cannotRead, codeOf, type Problem, problem } from "../csv.ts"
import { formatBytes } from "../text.ts"

const LOCAL = 0x04034b50
const CENTRAL = 0x02014b50
const END = 0x06054b50
const DESCRIPTOR = Buffer.from([0x50, 0x4b, 0x07, 0x08])

/** The entries `read-excel-file` keeps (its `filterZipArchiveEntry`); the rest it drains without inflating. */
const isKept = (name: string) => name.endsWith(".xml") || name.endsWith(".xml.rels")

export const notAWorkbook =
  "is not an .xlsx workbook (it cannot be opened as one); save it from Excel or WPS as .xlsx, or as CSV UTF-8"

const tooLarge = (max: number) =>
  `the workbook unzips to more than ${
    formatBytes(max)
  } (an .xlsx file is a zip archive; a roster of Excel's 1,048,576 rows unzips to about 200 MB): it is not an ordinary roster; save the sheet as CSV UTF-8`

/** Bytes `data` inflates to (raw DEFLATE), counting no further than `limit` + 1; undefined if it is not DEFLATE. */
const inflatedSize = (data: Uint8Array, limit: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const z = createInflateRaw({ chunkSize: 256 * 1024 })
    let n = 0
    let done = false
    const settle = (v: number | undefined) => {
      if (done) return
      done = true
      resolve(v)
    }
    z.on("data", (chunk: Buffer) => {
      n += chunk.length
      if (n > limit) {
        settle(n)
        z.destroy()
      }
    })
    z.on("end", () => settle(n))
    z.on("error", () => settle(undefined))
    z.end(data)
  })

/**
 * How many bytes `read-excel-file` will hold once it has unzipped `bytes`, or the problem that refuses the workbook:
 * more than `max`, or entries that cannot be walked. Bytes that do not start like a zip archive are left to the
 * reader, which names what they are (an old .xls workbook, an encrypted one, not a workbook at all).
 */
export const unzippedBytes = async (bytes: Buffer, max: number): Promise<number | Problem> => {
  if (bytes.length < 4 || bytes.readUInt32LE(0) !== LOCAL) return 0
  let pos = 0
  let total = 0
  while (pos + 4 <= bytes.length) {
    const signature = bytes.readUInt32LE(pos)
    if (signature === CENTRAL || signature === END) break // the reader reads no entry data past this point
    if (signature !== LOCAL) break // the reader fails here, having inflated nothing more
    if (pos + 30 > bytes.length) return problem({}, notAWorkbook)
    const flags = bytes.readUInt16LE(pos + 6)
    const method = bytes.readUInt16LE(pos + 8)
    const compressed = bytes.readUInt32LE(pos + 18)
    const declared = bytes.readUInt32LE(pos + 22)
    const nameLength = bytes.readUInt16LE(pos + 26)
    const extraLength = bytes.readUInt16LE(pos + 28)
    const start = pos + 30 + nameLength + extraLength
    if (start > bytes.length) return problem({}, notAWorkbook)
    const name = bytes.toString("utf8", pos + 30, pos + 30 + nameLength)
    // ZIP64 sizes (0xffffffff here, the real one in an extra field): an entry of 4 GB or more is over any limit, and
    // a workbook of at most `maxXlsxBytes` has no such compressed entry.
    if (declared === 0xffffffff) return problem({}, tooLarge(max))
    if (compressed === 0xffffffff) return problem({}, notAWorkbook)
    const sizeKnown = (flags & 0x08) === 0 || compressed > 0
    let end: number
    let next: number
    if (sizeKnown) {
      end = start + compressed
      next = end
    } else {
      end = bytes.indexOf(DESCRIPTOR, start)
      if (end < 0) return problem({}, notAWorkbook)
      next = end + 16
    }
    if (end > bytes.length) return problem({}, notAWorkbook)
    const directory = declared === 0 && /[/\\]$/.test(name)
    if (!directory && isKept(name)) {
      const budget = max - total
      // The reader allocates a declared size before it inflates anything.
      const reserved = sizeKnown ? declared : 0
      if (reserved > budget) return problem({}, tooLarge(max))
      const actual = method === 0 ? end - start : await inflatedSize(bytes.subarray(start, end), budget)
      if (actual === undefined) return problem({}, notAWorkbook)
      total += Math.max(reserved, actual)
      if (total > max) return problem({}, tooLarge(max))
    }
    pos = next
  }
  return total
}

/**
 * The workbook's bytes, read once and at most `maxFileBytes` of them (a file larger than that is refused, as is one
 * that cannot be read).
 */
export const readWorkbook = async (file: string, maxFileBytes: number): Promise<Buffer | Problem> => {
  let handle: Awaited<ReturnType<typeof open>> | undefined
  try {
    handle = await open(file, "r")
    const size = (await handle.stat()).size
    if (size > maxFileBytes) {
      return problem(
        {},
        `the workbook is ${formatBytes(size)}; dirsync reads .xlsx files of at most ${
          formatBytes(maxFileBytes)
        } (it unzips them whole): save the sheet as CSV UTF-8 for larger inputs`
      )
    }
    const bytes = Buffer.alloc(size)
    let read = 0
    while (read < size) {
      const { bytesRead } = await handle.read(bytes, read, size - read, read)
      if (bytesRead === 0) break // cut short while read: the check that the file did not change says so
      read += bytesRead
    }
    return read === size ? bytes : bytes.subarray(0, read)
  } catch (e) {
    return problem({}, cannotRead(codeOf(e)))
  } finally {
    await handle?.close().catch(() => undefined)
  }
}
