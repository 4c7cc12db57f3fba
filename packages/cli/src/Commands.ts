/**
 * What each `dirsync` command does: resolve the target (real API from the environment, or the in-process sandbox),
 * build the vendor layers, and hand the endpoint to the {@link Runner}.
 *
 * @since 0.1.0
 */
import { Faults } from "@dirsync/core"
import * as Departments from "@dirsync/feishu/Departments"
import * as FeishuMock from "@dirsync/feishu/FeishuMock"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as WeComTesting from "@dirsync/wecom/testing"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as CliExit from "./CliExit.ts"
import * as Progress from "./Progress.ts"
import * as Runner from "./Runner.ts"
import * as SandboxSeed from "./SandboxSeed.ts"
import * as SandboxServer from "./SandboxServer.ts"
import * as Target from "./Target.ts"

/**
 * Write-command flags plus `--faults` (sandbox only).
 *
 * @since 0.1.0
 * @category models
 */
export type Flags = Target.Flags

const parseFaults = (spec: string | undefined) =>
  Effect.try({
    try: () => (spec === undefined ? Faults.none : Faults.parse(spec)),
    catch: (e) => CliExit.usage(e instanceof Error ? e.message : String(e))
  })

/**
 * The CLI installs no tracer, so the span Effect's HTTP client opens for every request would never be exported, yet
 * it costs CPU per call and sends `traceparent` and `b3` headers to the vendor. The clients' own spans
 * (`WeComClient.post`, …) stay. Library users who install a tracer keep the HTTP spans unless they set
 * `HttpClient.TracerDisabledWhen` themselves.
 */
const withoutHttpSpans = Effect.provideService(HttpClient.TracerDisabledWhen, () => true)

// =============================================================================
// WeCom
// =============================================================================

const wecomRun = (command: string, file: string, layout: "students" | "parents", flags: Flags) =>
  Effect.gen(function*() {
    const counters = Progress.makeCounters()
    // The pipeline must keep as many chunks in flight as the client allows, or the client's cap is never reached.
    const concurrency = flags.concurrency ?? 2
    const target = yield* Target.wecom({
      flags,
      counters,
      concurrency,
      seed: (directory) => SandboxSeed.wecomFromInput(directory, file, layout)
    })
    const run = { command, file, layout, target: target.label, flags: { ...flags, concurrency }, counters }
    if (target.layer === undefined) {
      return layout === "students"
        ? yield* Runner.run({ ...run, endpoint: SchoolContacts.studentsSpec, secrets: target.secrets })
        : yield* Runner.run({ ...run, endpoint: SchoolContacts.parentsSpec, secrets: target.secrets })
    }
    return yield* Effect.gen(function*() {
      const school = yield* SchoolContacts.SchoolContacts
      return layout === "students"
        ? yield* Runner.run({ ...run, endpoint: school.students, secrets: target.secrets })
        : yield* Runner.run({ ...run, endpoint: school.parents, secrets: target.secrets })
    }).pipe(Effect.provide(target.layer), withoutHttpSpans)
  })

/**
 * `dirsync wecom students update <file>`
 *
 * @since 0.1.0
 * @category commands
 */
export const wecomStudents = (file: string, flags: Flags) => wecomRun("wecom students update", file, "students", flags)

/**
 * `dirsync wecom parents update <file>`
 *
 * @since 0.1.0
 * @category commands
 */
export const wecomParents = (file: string, flags: Flags) => wecomRun("wecom parents update", file, "parents", flags)

// =============================================================================
// Feishu
// =============================================================================

/**
 * `dirsync feishu departments add <file>`
 *
 * @since 0.1.0
 * @category commands
 */
export const feishuDepartments = (file: string, flags: Flags, batchSize: number | undefined) =>
  Effect.gen(function*() {
    const counters = Progress.makeCounters()
    const departments = batchSize === undefined ? {} : { chunkSize: batchSize }
    const target = yield* Target.feishu({ flags, counters, departments })
    const run = {
      command: "feishu departments add",
      file,
      layout: "departments",
      target: target.label,
      flags: { ...flags, concurrency: flags.concurrency ?? 1 },
      chunkSize: batchSize,
      counters,
      secrets: target.secrets
    } as const
    if (target.layer === undefined) return yield* Runner.run({ ...run, endpoint: Departments.spec(departments) })
    return yield* Effect.gen(function*() {
      const service = yield* Departments.Departments
      return yield* Runner.run({ ...run, endpoint: service.endpoint })
    }).pipe(Effect.provide(target.layer), withoutHttpSpans)
  })

// =============================================================================
// Sandbox
// =============================================================================

/**
 * `dirsync sandbox`: both vendors on one loopback port until interrupted.
 *
 * @since 0.1.0
 * @category commands
 */
export const sandbox = (args: {
  readonly port: number
  readonly faults: string
  readonly rate: number | undefined
  readonly seed: string | undefined
}) =>
  Effect.gen(function*() {
    const spec = [args.faults, args.rate === undefined ? "" : `rate=${args.rate}`].filter((s) => s).join(",")
    const faults = yield* parseFaults(spec)
    // A sandbox may serve millions of rows: keep only the latest calls' bodies.
    const wecom = WeComTesting.makeDirectory({ faults, callLogLimit: 1000 })
    const feishu = FeishuMock.make({ faults })
    if (args.seed !== undefined) yield* SandboxSeed.fromFile(args.seed, wecom, feishu)
    const served = yield* SandboxServer.serve([
      { prefix: "/cgi-bin/", handler: wecom.handle },
      { prefix: "/open-apis/", handler: feishu.handle }
    ], { port: args.port })
    process.stdout.write(
      [
        `dirsync sandbox: WeCom and Feishu emulators on ${served.url}${spec ? ` (faults: ${spec})` : ""}`,
        `Point dirsync at it (this is a local emulator; these credentials are not secret):`,
        `export WECOM_CORP_ID=${wecom.corpId}`,
        `export WECOM_SECRET=${wecom.secret}`,
        `export WECOM_BASE_URL=${served.url}`,
        `export FEISHU_APP_ID=${feishu.appId}`,
        `export FEISHU_APP_SECRET=${feishu.appSecret}`,
        `export FEISHU_BASE_URL=${served.url}`,
        `Press Ctrl-C to stop.`,
        ""
      ].join("\n")
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)

// =============================================================================
// Demo
// =============================================================================

/**
 * `dirsync demo`: the three write commands on the example files, in-process, with their reports.
 *
 * @since 0.1.0
 * @category commands
 */
export const demo = Effect.gen(function*() {
  const dir = SandboxSeed.examplesDir()
  const base: Flags = {
    dryRun: false,
    report: undefined,
    sandbox: true,
    concurrency: undefined,
    rate: undefined,
    journal: undefined,
    resume: false,
    strict: false,
    json: false,
    faults: undefined
  }
  const runs = [
    {
      title: "dirsync wecom students update examples/students.csv --sandbox",
      run: (f: Flags) =>
        // One scripted "system busy" (-1) shows a retry that the user never has to see.
        wecomStudents(`${dir}/students.csv`, { ...f, faults: "script=-1" }),
      file: "students"
    },
    {
      title: "dirsync wecom parents update examples/parents.csv --sandbox",
      run: (f: Flags) => wecomParents(`${dir}/parents.csv`, f),
      file: "parents"
    },
    {
      title: "dirsync feishu departments add examples/departments.csv --sandbox",
      run: (f: Flags) => feishuDepartments(`${dir}/departments.csv`, f, undefined),
      file: "departments"
    }
  ]
  const tmp = yield* Effect.sync(() => SandboxSeed.tempDir())
  for (const r of runs) {
    const report = `${tmp}/${r.file}-report.json`
    process.stdout.write(`\n$ ${r.title} --report ${r.file}-report.json\n`)
    // Rows rejected or failed on purpose (that is what the examples show) end with exit 3; the demo goes on.
    yield* r.run({ ...base, report }).pipe(
      Effect.catchIf((e) => e instanceof CliExit.CliExit && e.code === 3, () => Effect.void)
    )
    process.stdout.write(`\n${SandboxSeed.readText(report)}\n`)
  }
  process.stdout.write(
    `\nThe examples are in ${dir}. Try your own file with --dry-run or --sandbox; see \`dirsync --help\`.\n`
  )
})
