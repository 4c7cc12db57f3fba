/**
 * Hostile .xlsx files: workbooks that unzip to gigabytes (zip bombs, honest or lying about their sizes), a tiny
 * sheet whose one far cell makes the reader build billions of cells, and numbers stored in forms Excel and scripts
 * write. Each is refused in one line naming the file (exit 2, nothing sent) or read as typed; none may take the
 * process down. The archives are written here byte by byte (node's zlib), so the tests say exactly what is in them.
 */
import * as Input from "@dirsync/cli/Input"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { writeFileSync } from "node:fs"
import { constants, crc32, deflateRawSync, inflateRawSync } from "node:zlib"
import { afterAll } from "vitest"
import writeXlsxFile from "write-excel-file/node"
import { assertExit, assertNoStackTrace, dirsync, tempDir } from "./e2eHelpers.ts"

const dir = tempDir()
afterAll(() => dir.remove())

// =============================================================================
// Zip archives by hand
// =============================================================================

interface Entry {
  readonly name: string
  /** The entry's content; or, with `deflated`, what it inflates to is described by `size` and `crc`. */
  readonly data?: Buffer
  /** Raw DEFLATE data to store as is. */
  readonly deflated?: Buffer
  readonly size?: number
  readonly crc?: number
  /** The size the local header declares (default: the real one). */
  readonly declared?: number
  /** Sizes left to a data descriptor after the data (flag 8), as streaming zip writers do. */
  readonly descriptor?: boolean
}

const zip = (entries: ReadonlyArray<Entry>): Buffer => {
  const locals: Array<Buffer> = []
  const central: Array<Buffer> = []
  let offset = 0
  for (const e of entries) {
    const name = Buffer.from(e.name)
    const data = e.deflated ?? deflateRawSync(e.data!)
    const size = e.size ?? e.data!.length
    const crc = e.crc ?? crc32(e.data!)
    const declared = e.declared ?? size
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(e.descriptor ? 8 : 0, 6)
    local.writeUInt16LE(8, 8)
    local.writeUInt32LE(e.descriptor ? 0 : crc, 14)
    local.writeUInt32LE(e.descriptor ? 0 : data.length, 18)
    local.writeUInt32LE(e.descriptor ? 0 : declared, 22)
    local.writeUInt16LE(name.length, 26)
    const parts = [local, name, data]
    if (e.descriptor) {
      const d = Buffer.alloc(16)
      d.writeUInt32LE(0x08074b50, 0)
      d.writeUInt32LE(crc, 4)
      d.writeUInt32LE(data.length, 8)
      d.writeUInt32LE(declared, 12)
      parts.push(d)
    }
    const record = Buffer.concat(parts)
    const head = Buffer.alloc(46)
    head.writeUInt32LE(0x02014b50, 0)
    head.writeUInt16LE(20, 4)
    head.writeUInt16LE(20, 6)
    head.writeUInt16LE(e.descriptor ? 8 : 0, 8)
    head.writeUInt16LE(8, 10)
    head.writeUInt32LE(crc, 16)
    head.writeUInt32LE(data.length, 20)
    head.writeUInt32LE(declared, 24)
    head.writeUInt16LE(name.length, 28)
    head.writeUInt32LE(offset, 42)
    central.push(Buffer.concat([head, name]))
    locals.push(record)
    offset += record.length
  }
  const directory = Buffer.concat(central)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(directory.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, directory, end])
}

/** The entries of an archive, through its central directory. */
const unzip = (bytes: Buffer): Array<{ name: string; data: Buffer }> => {
  const end = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 5, 6]))
  let p = bytes.readUInt32LE(end + 16)
  return Array.from({ length: bytes.readUInt16LE(end + 10) }, () => {
    const size = bytes.readUInt32LE(p + 20)
    const nameLength = bytes.readUInt16LE(p + 28)
    const at = bytes.readUInt32LE(p + 42)
    const name = bytes.toString("utf8", p + 46, p + 46 + nameLength)
    const start = at + 30 + bytes.readUInt16LE(at + 26) + bytes.readUInt16LE(at + 28)
    p += 46 + nameLength + bytes.readUInt16LE(p + 30) + bytes.readUInt16LE(p + 32)
    return { name, data: inflateRawSync(bytes.subarray(start, start + size)) }
  })
}

const MB = 1024 * 1024

/**
 * `mb` MB of spaces as raw DEFLATE, built from one 16 MB block repeated: a full flush ends every block on a byte
 * boundary with no history, so copies of it follow one another (a kilobyte or so per 16 MB), then a final block.
 */
const spaces = (mb: number): { deflated: Buffer; size: number; crc: number } => {
  const chunk = Buffer.alloc(16 * MB, 0x20)
  const block = deflateRawSync(chunk, { finishFlush: constants.Z_FULL_FLUSH })
  const copies = Math.ceil(mb / 16)
  let crc = 0
  for (let i = 0; i < copies; i++) crc = crc32(chunk, crc)
  return {
    deflated: Buffer.concat([...Array.from({ length: copies }, () => block), deflateRawSync(Buffer.alloc(0))]),
    size: copies * chunk.length,
    crc
  }
}

/** A real workbook's entries (write-excel-file), a roster of one student, to build hostile ones from. */
const baseEntries = async () =>
  unzip(await writeXlsxFile([["学号", "姓名", "手机"], ["s1", "张三", 13800138000]]).toBuffer())

/** The workbook with `rows` (sheet XML) in place of its data rows. */
const withRows = async (rows: string) =>
  (await baseEntries()).map((e) =>
    e.name === "xl/worksheets/sheet1.xml"
      ? { ...e, data: Buffer.from(e.data.toString().replace(/<row r="2">.*<\/sheetData>/, `${rows}</sheetData>`)) }
      : e
  )

let n = 0
const save = (bytes: Buffer) => {
  const file = dir.path(`hostile-${++n}.xlsx`)
  writeFileSync(file, bytes)
  return file
}

const inline = (ref: string, text: string) => `<c r="${ref}" t="inlineStr"><is><t>${text}</t></is></c>`

// =============================================================================
// Library
// =============================================================================

const read = (file: string, options: Input.Options = {}) =>
  Effect.scoped(Effect.flatMap(Input.read(file, "students", options), Stream.runCollect)).pipe(
    Effect.map((rows) => rows.map(({ problems, row, value }) => ({ row, value, problems })))
  )

const refusal = (file: string, options: Input.Options = {}) =>
  Effect.flip(read(file, options)).pipe(Effect.map((e) => e.message))

describe("Input", () => {
  describe("read (.xlsx zip bombs)", () => {
    it.effect("refuses a workbook whose XML entries unzip to more than maxXlsxUnzippedBytes, before parsing", () =>
      Effect.gen(function*() {
        const bomb = spaces(32)
        const entries = [...(yield* Effect.promise(baseEntries)), { name: "xl/padding.xml", ...bomb }]
        const file = save(zip(entries))
        const message = yield* refusal(file, { maxXlsxUnzippedBytes: 8 * MB })
        assert.strictEqual(message.split("\n").length, 1)
        assert.include(message, `${file}: the workbook unzips to more than 8.4 MB`)
        // Under a limit it fits, the same workbook reads (the padding entry is no sheet).
        assert.deepStrictEqual(
          (yield* read(file, { maxXlsxUnzippedBytes: 64 * MB })).map((r) => r.value),
          [{ student_userid: "s1", name: "张三", mobile: "13800138000" }]
        )
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("counts what an entry really inflates to, whatever its header declares (a lie, or no size at all)", () =>
      Effect.gen(function*() {
        const bomb = spaces(32)
        for (const lie of [{ declared: 100 }, { descriptor: true }]) {
          const entries = [...(yield* Effect.promise(baseEntries)), { name: "xl/padding.xml", ...bomb, ...lie }]
          const file = save(zip(entries))
          assert.include(yield* refusal(file, { maxXlsxUnzippedBytes: 8 * MB }), "unzips to more than 8.4 MB")
        }
      }).pipe(Effect.provide(NodeServices.layer)))

    it.effect("counts a size an entry declares but does not have (the reader allocates it up front)", () =>
      Effect.gen(function*() {
        const entries = [...(yield* Effect.promise(baseEntries)), {
          name: "xl/padding.xml",
          data: Buffer.from("<x/>"),
          declared: 4_000_000_000
        }]
        assert.include(yield* refusal(save(zip(entries))), "unzips to more than 400 MB")
      }).pipe(Effect.provide(NodeServices.layer)))
  })

  describe("read (.xlsx numbers)", () => {
    it.effect("reads a number stored as 1.38E+10 or 13800138000.0 as the digits typed; a 20-digit id exactly", () =>
      Effect.gen(function*() {
        const file = save(zip(
          yield* Effect.promise(() =>
            withRows(
              `<row r="2">${inline("A2", "s1")}<c r="C2"><v>1.38E+10</v></c></row>` +
                `<row r="3">${inline("A3", "s2")}<c r="C3"><v>13800138001.0</v></c></row>` +
                `<row r="4"><c r="A4"><v>12345678901234567890</v></c></row>` +
                `<row r="5"><c r="A5"><v>1.2345678901234567E+19</v></c></row>`
            )
          )
        ))
        const rows = yield* read(file)
        assert.deepStrictEqual(rows.map((r) => r.value), [
          { student_userid: "s1", mobile: "13800000000" },
          { student_userid: "s2", mobile: "13800138001" },
          { student_userid: "12345678901234567890" },
          // Beyond 2^53 a float has lost digits: kept as stored, which the id's own check rejects, naming the field.
          { student_userid: "1.2345678901234567E+19" }
        ])
      }).pipe(Effect.provide(NodeServices.layer)))
  })
})

// =============================================================================
// CLI
// =============================================================================

describe("dirsync wecom students update (hostile .xlsx)", () => {
  it("a 1 MB workbook that unzips to 1.5 GB is refused in one line, exit 2, without exhausting memory", async () => {
    const bomb = spaces(512)
    const entries = [
      ...(await baseEntries()),
      // Entries the reader keeps but never parses, sizes left to data descriptors: held whole before this check.
      ...[1, 2, 3].map((i) => ({ name: `xl/padding${i}.xml`, ...bomb, descriptor: true }))
    ]
    const file = save(zip(entries))
    const result = await dirsync(["wecom", "students", "update", file, "--dry-run"])
    assertExit(result, 2)
    assertNoStackTrace(result)
    assert.strictEqual(
      result.stderr.trim().split("\n").filter((l) => !l.includes("rows/s")).join("\n"),
      `dirsync: ${file}: the workbook unzips to more than 400 MB (an .xlsx file is a zip archive; a roster of Excel's 1,048,576 rows unzips to about 200 MB): it is not an ordinary roster; save the sheet as CSV UTF-8`
    )
  })

  it("a 3 KB workbook with one value in cell XFD1048576 is refused in one line, exit 2, not a V8 crash", async () => {
    const file = save(zip(await withRows(`<row r="1048576">${inline("XFD1048576", "x")}</row>`)))
    const result = await dirsync(["wecom", "students", "update", file, "--dry-run"])
    assertExit(result, 2)
    assertNoStackTrace(result)
    // The progress line may show while the sheet is read (a slow machine); the verdict is one line.
    const lines = result.stderr.trim().split("\n").filter((l) => !l.includes("rows/s"))
    assert.strictEqual(lines.length, 1, result.stderr)
    assert.include(lines[0], `dirsync: ${file}: the sheet needs more than the 257 MB of memory`)
    assert.include(lines[0], "nothing was sent")
  })
})
