/**
 * The naive baseline of benchmark B2: what a school IT admin writes by hand to push a student CSV into WeCom.
 * Read the file, split lines on commas (no quoting, no validation), get a token once, then one sequential `fetch`
 * per 100-row chunk to `batch_update_student`. No retries, no rate limiting, no report.
 *
 *   WECOM_CORP_ID=… WECOM_SECRET=… WECOM_BASE_URL=http://127.0.0.1:PORT node bench/naive.ts students.csv
 *
 * Prints one JSON line: `{"rows":…, "calls":…, "failedRows":…, "seconds":…}`.
 */
import { readFileSync } from "node:fs"

const started = performance.now()
const file = process.argv[2]
if (file === undefined) {
  console.error("usage: node bench/naive.ts students.csv")
  process.exit(2)
}
const base = process.env.WECOM_BASE_URL ?? "https://qyapi.weixin.qq.com"
const corpId = process.env.WECOM_CORP_ID ?? ""
const secret = process.env.WECOM_SECRET ?? ""

const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0)
const header = lines[0]!.split(",")
const students = lines.slice(1).map((line) => {
  const cells = line.split(",")
  const student: Record<string, unknown> = {}
  header.forEach((name, i) => {
    const cell = cells[i]
    if (cell === undefined || cell === "") return
    student[name] = name === "department" ? cell.split(";").map(Number) : cell
  })
  return student
})

const tokenReply = await fetch(
  `${base}/cgi-bin/gettoken?corpid=${encodeURIComponent(corpId)}&corpsecret=${encodeURIComponent(secret)}`
)
const { access_token: token } = await tokenReply.json() as { access_token: string }
let calls = 1
let failedRows = 0
for (let i = 0; i < students.length; i += 100) {
  const chunk = students.slice(i, i + 100)
  const reply = await fetch(`${base}/cgi-bin/school/user/batch_update_student?access_token=${token}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ students: chunk })
  })
  calls++
  const body = await reply.json() as { errcode?: number; result_list?: Array<unknown> }
  if ((body.errcode ?? 0) !== 0) failedRows += body.result_list?.length ?? chunk.length
}
console.log(JSON.stringify({
  rows: students.length,
  calls,
  failedRows,
  seconds: (performance.now() - started) / 1000
}))
