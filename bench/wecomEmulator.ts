/**
 * The WeCom emulator's CPU per `school/user/batch_update_student` call, without HTTP: what `dirsync sandbox` spends
 * per B1 call besides its server (docs/PERFORMANCE.md, "Issue 16: the WeCom emulator's CPU per call"). Not a test.
 *
 *   node bench/wecomEmulator.ts [--runs 5] [--students 1000000] [--calls 10000] [--scenario b1|keep|both]
 *     [--module PATH]
 *
 * Each run builds a fresh emulator as the sandbox does (`callLogLimit: 1000`), seeds it (not measured), takes a token,
 * then sends `--calls` requests of 100 rows straight to `directory.handle(...)` and measures the process's CPU
 * (`process.cpuUsage`, user + system) around the handler only; the bodies are built outside the measured part.
 * Every reply must be `errcode` 0. Two scenarios:
 *
 * - `b1`: B1 itself. The sandbox seed of `bench/data.ts` (72 classes, each student in one homeroom, named `old<i>`,
 *   no mobile) and the CSV's rows (`student(i)`: a new name, a mobile, a homeroom and an interest class), so every
 *   row changes name and mobile and adds a class, as the first B1 run over a fresh seed does.
 * - `keep`: 1M students in 5,000 classes (200 a class), rows that change the name and mobile and keep the class,
 *   every 20th row also renamed (`new_student_userid`).
 *
 * Prints CPU-ms per 1,000 rows for each run, then the median and the slowest of the runs, one line per scenario.
 * `--module` takes the emulator's `make` from another file (a copy of an older `emulator.ts` with absolute imports),
 * so two versions can be run alternately on the same machine.
 */
import * as Effect from "effect/Effect"
import { resolve } from "node:path"
import { PerformanceObserver } from "node:perf_hooks"
import { pathToFileURL } from "node:url"
import type * as WeComTesting from "../packages/wecom/src/testing.ts"
import { classIds, student, studentId } from "./data.ts"

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : process.argv[i + 1]!
}
const runs = Number(arg("--runs", "5"))
const studentCount = Number(arg("--students", "1000000"))
const calls = Number(arg("--calls", "10000"))
const scenarioArg = arg("--scenario", "both")
const scenarios = scenarioArg === "both" ? ["b1", "keep"] as const : [scenarioArg as "b1" | "keep"]
const perCall = 100
const keepClasses = 5_000
const modulePath = arg("--module", "")
const make: typeof WeComTesting.make = modulePath === ""
  ? (await import("../packages/wecom/src/testing.ts")).make
  : (await import(pathToFileURL(resolve(modulePath)).href)).make

type Row = Record<string, unknown>

const seed = (directory: WeComTesting.Directory, scenario: "b1" | "keep") => {
  if (scenario === "b1") {
    directory.addClasses(...classIds)
    for (let i = 1; i <= studentCount; i++) {
      directory.addStudent({ student_userid: studentId(i), name: `old${i}`, department: [1 + (i % 60)] })
    }
  } else {
    directory.addClasses(...Array.from({ length: keepClasses }, (_, c) => 1 + c))
    for (let i = 1; i <= studentCount; i++) {
      directory.addStudent({
        student_userid: studentId(i),
        name: `old${i}`,
        mobile: `139${String(i).padStart(8, "0")}`,
        department: [1 + (i % keepClasses)]
      })
    }
  }
}

const row = (scenario: "b1" | "keep", i: number): Row => {
  const s = student(i)
  if (scenario === "b1") return s
  return {
    student_userid: s.student_userid,
    ...(i % 20 === 0 ? { new_student_userid: `${s.student_userid}r` } : {}),
    name: s.name,
    mobile: s.mobile,
    department: [1 + (i % keepClasses)]
  }
}

// Garbage collections, for the share of the measured time they take (entries arrive after the synchronous run).
const collections: Array<{ readonly start: number; readonly end: number }> = []
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) collections.push({ start: e.startTime, end: e.startTime + e.duration })
}).observe({ entryTypes: ["gc"] })

/** Runs one scenario: CPU-ms per 1,000 rows, and the measured stretches of wall time (for the GC share). */
const run = (scenario: "b1" | "keep") => {
  const directory = make({ callLogLimit: 1000 })
  seed(directory, scenario)
  const tokenReply = Effect.runSync(directory.handle({
    method: "GET",
    url: `/cgi-bin/gettoken?corpid=${directory.corpId}&corpsecret=${directory.secret}`,
    headers: {},
    bodyText: ""
  })) as WeComTesting.MockResponse & { bodyText: string }
  const token = JSON.parse(tokenReply.bodyText).access_token as string
  const url = `/cgi-bin/school/user/batch_update_student?access_token=${token}`
  const headers = { "content-type": "application/json; charset=utf-8" }
  let cpuMicros = 0
  let rows = 0
  const windows: Array<{ readonly start: number; readonly end: number }> = []
  const block = 100 // calls whose bodies are built before measuring them
  for (let c = 0; c < calls; c += block) {
    const bodies: Array<string> = []
    for (let k = c; k < Math.min(calls, c + block); k++) {
      const items: Array<Row> = []
      for (let j = 0; j < perCall; j++) items.push(row(scenario, 1 + ((k * perCall + j) % studentCount)))
      bodies.push(JSON.stringify({ students: items }))
    }
    const replies: Array<WeComTesting.MockResponse | "drop"> = []
    const start = performance.now()
    const before = process.cpuUsage()
    for (const bodyText of bodies) {
      replies.push(Effect.runSync(directory.handle({ method: "POST", url, headers, bodyText })))
    }
    const used = process.cpuUsage(before)
    windows.push({ start, end: performance.now() })
    cpuMicros += used.user + used.system
    for (const reply of replies) {
      if (reply === "drop" || reply.status !== 200 || !reply.bodyText.startsWith(`{"errcode":0,`)) {
        throw new Error(`unexpected reply: ${JSON.stringify(reply).slice(0, 300)}`)
      }
    }
    rows += bodies.length * perCall
  }
  return { perThousand: cpuMicros / 1000 / (rows / 1000), rows, windows }
}

/** GC milliseconds per 1,000 rows inside the measured stretches. */
const gcPerThousand = (rows: number, windows: ReadonlyArray<{ readonly start: number; readonly end: number }>) => {
  let ms = 0
  let w = 0
  for (const c of collections.toSorted((a, b) => a.start - b.start)) {
    while (w < windows.length && windows[w]!.end <= c.start) w++
    for (let i = w; i < windows.length && windows[i]!.start < c.end; i++) {
      ms += Math.max(0, Math.min(c.end, windows[i]!.end) - Math.max(c.start, windows[i]!.start))
    }
  }
  return ms / (rows / 1000)
}

const median = (xs: ReadonlyArray<number>) => {
  const s = xs.toSorted((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

for (const scenario of scenarios) {
  const results: Array<number> = []
  const gcs: Array<number> = []
  for (let r = 0; r < runs; r++) {
    const { perThousand, rows, windows } = run(scenario)
    await new Promise((resolve) => setTimeout(resolve, 10)) // the run's GC entries
    const gc = gcPerThousand(rows, windows)
    collections.length = 0
    results.push(perThousand)
    gcs.push(gc)
    process.stderr.write(
      `${scenario} run ${r + 1}: ${perThousand.toFixed(2)} CPU-ms per 1,000 rows (GC ${gc.toFixed(2)} ms of it)\n`
    )
    ;(globalThis as { gc?: () => void }).gc?.()
  }
  console.log(
    `${scenario}: ${calls.toLocaleString("en-US")} calls of ${perCall} rows, ${
      studentCount.toLocaleString("en-US")
    } students; CPU-ms per 1,000 rows: median ${median(results).toFixed(2)}, slowest ${
      Math.max(...results).toFixed(2)
    } (runs ${results.map((x) => x.toFixed(2)).join(" / ")}); GC in the measured part: median ${
      median(gcs).toFixed(2)
    } ms per 1,000 rows`
  )
}
