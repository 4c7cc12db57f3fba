/**
 * How `dirsync wecom plan` / `sync` read the roster: per file (`--students-sheet`, `--students-map`,
 * `--students-format` and the `--parents-…` ones; `--ignore-extra-columns` for both), an .xlsx workbook with
 * WeCom's Chinese template headers, one workbook holding both kinds, standard input for one of the files, and
 * `apply --refresh` reading the files again exactly as the plan read them.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import writeXlsxFile, { type SheetData } from "write-excel-file/node"
import * as H from "./e2eHelpers.ts"

const school = {
  wecomDepartments: [
    { id: 1, parentid: 0, name: "实验小学", type: 5 },
    { id: 11, parentid: 1, name: "一年级1班", type: 1 },
    { id: 12, parentid: 1, name: "一年级2班", type: 1 }
  ],
  students: [{ student_userid: "wangwu", name: "王五", department: [12] }]
}

// WeCom's 家校通讯录 template headers, numbers typed as numbers, and a remark column that is no field.
const studentsSheet: SheetData = [
  ["学号", "姓名", "手机", "班级", "备注"],
  ["zhangsan", "张三", 13800138000, 11, "转学生"],
  ["lisi", "李四", null, "11;12", null],
  ["wangwu", "王五五", null, 12, null]
]
const parentsSheet: SheetData = [
  ["家长账号", "手机", "学号", "关系"],
  ["zhangsan_mama", 13900139000, "zhangsan", "妈妈"]
]

const oneJson = (r: H.Result): Record<string, any> => {
  const lines = r.stdout.trim().split("\n")
  assert.strictEqual(lines.length, 1, `one JSON object on stdout, got:\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(lines[0]!) as Record<string, any>
}

/** `dirsync ...args` with `input` on its standard input. */
const withStdin = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, input: string) =>
  new Promise<H.Result>((resolve, reject) => {
    const clean: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith("WECOM_") && !k.startsWith("FEISHU_")) clean[k] = v
    }
    const child = spawn(process.execPath, [H.bin, ...args], {
      env: { ...clean, NO_COLOR: "1", ...env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => void (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => void (stderr += d))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    child.stdin.end(input)
  })

describe("wecom plan: reading the roster", () => {
  let dir: H.TempDir
  let sandbox: H.Sandbox
  beforeAll(async () => {
    dir = H.tempDir()
    sandbox = await H.startSandbox({ seed: dir.write("seed.json", JSON.stringify(school)) })
  }, 30_000)
  afterAll(async () => {
    await sandbox.stop()
    dir.remove()
  })

  const workbook = async (
    name: string,
    sheets: ReadonlyArray<{ readonly sheet: string; readonly data: SheetData }>
  ) => {
    const file = dir.path(name)
    await writeXlsxFile(sheets.map((s) => ({ ...s }))).toFile(file)
    return file
  }

  it(
    "an .xlsx workbook with Chinese headers, a sheet per kind: planned field by field; --refresh reads the same sheets",
    {
      timeout: 90_000
    },
    async () => {
      // The parents' sheet first: a reader that ignored --students-sheet would read parents as students.
      const book = await workbook("school.xlsx", [
        { sheet: "家长", data: parentsSheet },
        { sheet: "学生", data: studentsSheet }
      ])
      const out = dir.path("xlsx-plan.json")
      const args = [
        "wecom",
        "plan",
        "--students",
        book,
        "--students-sheet",
        "学生",
        "--parents",
        book,
        "--parents-sheet",
        "家长"
      ]
      const planned = await H.dirsync([...args, "--out", out], sandbox.env)
      H.assertExit(planned, 4)
      const text = planned.stdout
      assert.include(text, "+ create student zhangsan (row 1)")
      assert.include(text, "name: 张三")
      assert.include(text, "mobile: 13800138000")
      assert.include(text, "department: 一年级1班 (11)")
      assert.include(text, "+ create student lisi")
      assert.include(text, "name: 王五 → 王五五")
      assert.include(text, "+ create parent zhangsan_mama")
      assert.include(text, "mobile: 13900139000")
      assert.include(text, "rejected rows (not in the plan): 0")
      assert.include(planned.stderr, "skipped column \"备注\"", "the remark column is named once, on stderr")

      const file = JSON.parse(readFileSync(out, "utf8")) as Record<string, any>
      assert.strictEqual(file["sources"]["students"]["sheet"], "学生")
      assert.strictEqual(file["sources"]["parents"]["sheet"], "家长")
      assert.deepStrictEqual(file["summary"], {
        createStudent: 2,
        updateStudent: 1,
        renameStudent: 0,
        deleteStudent: 0,
        createParent: 1,
        updateParent: 0,
        renameParent: 0,
        deleteParent: 0,
        rejected: 0
      })

      // Class 12 changes under the plan: --refresh re-plans from the workbook, each kind from its own sheet again.
      const env = sandbox.env
      const token = await (await fetch(
        `${sandbox.url}/cgi-bin/gettoken?corpid=${env["WECOM_CORP_ID"]}&corpsecret=${env["WECOM_SECRET"]}`
      )).json() as { access_token: string }
      await fetch(`${sandbox.url}/cgi-bin/school/user/batch_update_student?access_token=${token.access_token}`, {
        method: "POST",
        body: JSON.stringify({ students: [{ student_userid: "wangwu", name: "王五六" }] })
      })
      const refreshed = await H.dirsync(["wecom", "apply", out, "--refresh", "--json"], sandbox.env)
      H.assertExit(refreshed, 0)
      assert.deepStrictEqual(oneJson(refreshed)["summary"], {
        total: 4,
        applied: 4,
        rejected: 0,
        failed: 0,
        skipped: 0
      })
      const users = await H.wecomGet(sandbox, ["zhangsan_mama", "wangwu"])
      const mama = users.get("zhangsan_mama")!["parent"] as { children: Array<{ student_userid: string }> }
      assert.deepStrictEqual(mama.children.map((c) => c.student_userid), ["zhangsan"])
      assert.strictEqual((users.get("wangwu")!["student"] as { name: string }).name, "王五五")
      H.assertExit(await H.dirsync(args, sandbox.env), 0)
    }
  )

  it(
    "--students-map names a column of the students file only; --parents - reads standard input with --parents-format",
    {
      timeout: 60_000
    },
    async () => {
      const students = dir.write(
        "mapped.csv",
        H.csv("学生编码,学生,班级", ["mapkid,映射,12"])
      )
      const parents = H.csv("家长账号,手机,学号,称谓", ["mapkid_baba,13700137000,mapkid,爸爸"])
      const r = await withStdin(
        [
          "wecom",
          "plan",
          "--students",
          students,
          "--students-map",
          "student_userid=学生编码,name=学生",
          "--parents",
          "-",
          "--parents-format",
          "csv",
          "--parents-map",
          "relation=称谓",
          "--json"
        ],
        sandbox.env,
        parents
      )
      H.assertExit(r, 4)
      const json = oneJson(r)
      assert.strictEqual(json["summary"]["createStudent"], 1)
      assert.strictEqual(json["summary"]["createParent"], 1)
      assert.strictEqual(json["summary"]["rejected"], 0)
    }
  )

  it(
    "refuses reading flags that cannot be right, one line each, before anything is read",
    { timeout: 60_000 },
    async () => {
      const students = dir.write("r.csv", H.csv("student_userid,name,department", ["a,甲,11"]))
      const book = await workbook("one.xlsx", [{ sheet: "学生", data: studentsSheet }])
      const cases: Array<[ReadonlyArray<string>, RegExp]> = [
        [
          ["--students", students, "--students-map", "relation=关系"],
          /--students-map: "relation" is not a field of students/
        ],
        [
          ["--students", students, "--parents-sheet", "家长"],
          /--parents-sheet reads the parents file, but there is no --parents FILE/
        ],
        [
          ["--students", book, "--parents", book],
          /name the same file .*add --students-sheet NAME and --parents-sheet NAME/
        ],
        [
          ["--students", "-", "--parents", "-"],
          /--students and --parents (cannot both be standard input|name the same file)/
        ],
        [["--students", "-"], /add --format csv|format cannot be told/]
      ]
      const runs = await Promise.all(
        cases.map(([args]) => H.dirsync(["wecom", "plan", ...args, "--json"], sandbox.env))
      )
      runs.forEach((run, i) => {
        H.assertExit(run, 2)
        H.assertNoStackTrace(run)
        assert.match(String(oneJson(run)["error"]), cases[i]![1])
      })
    }
  )
})
