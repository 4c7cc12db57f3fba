/**
 * How long reading a big school takes against the in-process WeCom emulator (`@dirsync/wecom/testing`): 600 classes,
 * 30,000 students (50 a class), 60,000 parents (two per student), read whole by `SchoolDirectory.read` through the
 * real client (token, rate limit, envelope), as `dirsync wecom plan --sandbox` reads it. Then one class alone, straight
 * from the emulator, to show what a class read costs.
 *
 *   node bench/schoolRead.ts [--classes 600] [--per-class 50]
 *
 * Prints one JSON line: `{"classes":…, "students":…, "parents":…, "readSeconds":…, "classReadMillis":…}`.
 */
import * as Effect from "effect/Effect"
import * as SchoolDirectory from "../packages/wecom/src/SchoolDirectory.ts"
import * as WeComTesting from "../packages/wecom/src/testing.ts"

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const classCount = arg("--classes", 600)
const perClass = arg("--per-class", 50)

const directory = WeComTesting.make()
const classIds = Array.from({ length: classCount }, (_, i) => 1000 + i)
directory.addClasses(...classIds)
let n = 0
for (const id of classIds) {
  for (let j = 0; j < perClass; j++, n++) {
    const student = `s${n}`
    directory.addStudent({ student_userid: student, name: `学生${n}`, department: [id] })
    for (const who of ["m", "f"]) {
      directory.addParent({
        parent_userid: `p${n}${who}`,
        mobile: `138${String(n).padStart(7, "0")}`,
        children: [{ student_userid: student, relation: who === "m" ? "母亲" : "父亲" }]
      })
    }
  }
}

const started = performance.now()
const state = await Effect.runPromise(
  SchoolDirectory.read().pipe(
    Effect.provide(WeComTesting.layerClient(directory, { rateLimit: { calls: 1_000_000, window: "1 minute" } }))
  )
)
const readSeconds = (performance.now() - started) / 1000

// One class straight from the emulator (token first): the cost of the read itself, without the client.
const token = await Effect.runPromise(directory.handle({
  method: "GET",
  url: `/cgi-bin/gettoken?corpid=${directory.corpId}&corpsecret=${directory.secret}`,
  headers: {},
  bodyText: ""
}))
const accessToken = JSON.parse((token as WeComTesting.MockResponse & { bodyText: string }).bodyText)
  .access_token as string
const one = performance.now()
const reads = 200
for (let i = 0; i < reads; i++) {
  await Effect.runPromise(directory.handle({
    method: "GET",
    url: `/cgi-bin/school/user/list?department_id=${classIds[i]}&access_token=${accessToken}`,
    headers: {},
    bodyText: ""
  }))
}
const classReadMillis = (performance.now() - one) / reads

console.log(JSON.stringify({
  classes: classCount,
  students: state.students.length,
  parents: state.parents.length,
  readSeconds: Number(readSeconds.toFixed(2)),
  classReadMillis: Number(classReadMillis.toFixed(3))
}))
