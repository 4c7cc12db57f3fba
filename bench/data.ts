/**
 * Generated inputs for the benchmarks: student CSVs (`student_userid,name,mobile,department`, every row valid) and
 * the matching `dirsync sandbox --seed` JSON, so that every student of the CSV exists in the sandbox and every row
 * is applied. Row i is the same student in every file, so a seed of n students covers every CSV of ≤ n rows.
 */
import { closeSync, openSync, writeSync } from "node:fs"

const surnames = ["张", "王", "李", "赵", "陈", "刘", "杨", "黄", "周", "吴"]
const given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "子涵", "欣怡"]

/** Class ids the generated students use: 60 homerooms and 12 interest classes. */
export const classIds: ReadonlyArray<number> = [
  ...Array.from({ length: 60 }, (_, i) => i + 1),
  ...Array.from({ length: 12 }, (_, i) => 1001 + i)
]

export const studentId = (i: number): string => `stu${String(i).padStart(7, "0")}`

const name = (i: number): string =>
  `${surnames[i % surnames.length]}${given[(i >> 2) % given.length]}${given[(i >> 5) % given.length]}`

/** Writes a file in blocks of `block` rows, so generating 1M rows needs a few MB, not the whole file. */
const writeBlocks = (path: string, head: string, count: number, row: (i: number) => string, tail = "") => {
  const fd = openSync(path, "w")
  try {
    writeSync(fd, head)
    const block = 20_000
    for (let start = 1; start <= count; start += block) {
      const parts: Array<string> = []
      for (let i = start; i < start + block && i <= count; i++) parts.push(row(i))
      writeSync(fd, parts.join(""))
    }
    writeSync(fd, tail)
  } finally {
    closeSync(fd)
  }
}

/** Student i as the CLI's CSV reader hands it to the pipeline: strings, class ids as numbers. */
export const student = (i: number) => ({
  student_userid: studentId(i),
  name: name(i),
  mobile: `138${String(i).padStart(8, "0")}`,
  department: [1 + (i % 60), 1001 + (i % 12)]
})

/** `count` valid student rows: the CSV a school would export, UTF-8, with class ids joined by `;`. */
export const writeStudentsCsv = (path: string, count: number): void =>
  writeBlocks(path, "student_userid,name,mobile,department\n", count, (i) => {
    const s = student(i)
    return `${s.student_userid},${s.name},${s.mobile},${s.department.join(";")}\n`
  })

/** The sandbox seed: every class and the first `count` students (with other names, so the updates change them). */
export const writeSeed = (path: string, count: number): void =>
  writeBlocks(
    path,
    `{"classes":${JSON.stringify(classIds)},"parents":[],"departments":[],"students":[\n`,
    count,
    (i) =>
      `${i === 1 ? "" : ","}{"student_userid":"${studentId(i)}","name":"old${i}","department":[${1 + (i % 60)}]}\n`,
    "]}\n"
  )
