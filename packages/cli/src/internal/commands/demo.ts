/**
 * `dirsync demo`: the three write commands on the example files, each against an in-process sandbox, with their
 * reports printed.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as CliExit from "../../CliExit.ts"
import { examplesDir } from "../../Sandbox.ts"
import type * as Target from "../../Target.ts"
import * as Files from "../files.ts"
import * as Feishu from "./feishu.ts"
import * as WeCom from "./wecom.ts"

const base: Target.Flags = {
  dryRun: false,
  report: undefined,
  sandbox: true,
  concurrency: undefined,
  rate: undefined,
  journal: undefined,
  resume: false,
  strict: false,
  json: false,
  // The demo runs against its own in-process sandbox: nothing to confirm, and three questions would bury the output.
  yes: true,
  faults: undefined
}

const runs = [
  {
    title: "dirsync wecom students update examples/students.csv --sandbox",
    // One scripted "system busy" (-1) shows a retry that the user never has to see.
    run: (f: Target.Flags) => WeCom.students(`${examplesDir}/students.csv`, { ...f, faults: "script=-1" }),
    file: "students"
  },
  {
    title: "dirsync wecom parents update examples/parents.csv --sandbox",
    run: (f: Target.Flags) => WeCom.parents(`${examplesDir}/parents.csv`, f),
    file: "parents"
  },
  {
    title: "dirsync feishu departments add examples/departments.csv --sandbox",
    run: (f: Target.Flags) => Feishu.departments(`${examplesDir}/departments.csv`, f, undefined),
    file: "departments"
  }
]

/** `dirsync demo` */
export const demo = Effect.scoped(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  // The reports live only as long as the demo: removed when it ends, however it ends (Ctrl-C included).
  const tmp = yield* Effect.acquireRelease(
    fs.makeTempDirectory({ prefix: "dirsync-demo-" }).pipe(
      Effect.mapError((e) => CliExit.aborted(`demo: cannot create a temporary directory (${Files.describeError(e)})`))
    ),
    (dir) => Effect.ignore(fs.remove(dir, { recursive: true, force: true }))
  )
  for (const r of runs) {
    const report = `${tmp}/${r.file}-report.json`
    process.stdout.write(`\n$ ${r.title} --report ${r.file}-report.json\n`)
    // Rows rejected or failed on purpose (that is what the examples show) end with exit 3; the demo goes on.
    yield* r.run({ ...base, report }).pipe(
      Effect.catchIf((e) => e instanceof CliExit.CliExit && e.code === 3, () => Effect.void)
    )
    const text = yield* fs.readFileString(report).pipe(
      Effect.mapError((e) => CliExit.aborted(`demo: cannot read the report (${Files.describeError(e)})`))
    )
    process.stdout.write(`\n${text}\n`)
  }
  process.stdout.write(
    `\nThe examples are in ${examplesDir}. Try your own file with --dry-run or --sandbox; see \`dirsync --help\`.\n`
  )
}))
