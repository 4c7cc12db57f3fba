/**
 * What each `dirsync` command does: resolve the target (real API from the environment, or the in-process sandbox),
 * build the vendor layers, and hand the endpoint to the {@link Runner}.
 *
 * @since 0.1.0
 */
import { BaseUrl, RateLimit } from "@dirsync/core"
import { Faults } from "@dirsync/core/testing"
import * as Departments from "@dirsync/feishu/Departments"
import * as FeishuClient from "@dirsync/feishu/FeishuClient"
import * as FeishuMock from "@dirsync/feishu/testing"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as WeComTesting from "@dirsync/wecom/testing"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as CliExit from "./CliExit.ts"
import * as Progress from "./Progress.ts"
import * as Runner from "./Runner.ts"
import * as SandboxSeed from "./SandboxSeed.ts"
import * as SandboxServer from "./SandboxServer.ts"

/**
 * Write-command flags plus `--faults` (sandbox only).
 *
 * @since 0.1.0
 * @category models
 */
export type Flags = Runner.WriteFlags & { readonly faults: string | undefined }

const env = (name: string): string | undefined => {
  const value = process.env[name]
  return value === undefined || value.trim() === "" ? undefined : value.trim()
}

const parseFaults = (spec: string | undefined) =>
  Effect.try({
    try: () => (spec === undefined ? Faults.none : Faults.parse(spec)),
    catch: (e) => CliExit.usage(e instanceof Error ? e.message : String(e))
  })

/** A client refusing its configuration (e.g. a plain-http base URL) is a usage error: nothing was sent. */
const configToUsage = (e: unknown): unknown =>
  e instanceof CliExit.CliExit || typeof e !== "object" || e === null || !("_tag" in e) ?
    e
    : e._tag === "WeComConfigError" || e._tag === "ConfigError"
    ? CliExit.usage(e instanceof Error ? e.message : String(e))
    : e

// Checked here, not only in the clients, so a refusal names the variable, reads as one sentence and exits 2 even
// on a dry run (whose report names the target).
const baseUrlOf = (variable: string, fallback: string) => {
  const raw = env(variable) ?? fallback
  const refused = BaseUrl.problem(raw)
  return refused === undefined
    ? Effect.succeed(BaseUrl.normalize(raw))
    : Effect.fail(CliExit.usage(`${variable}: ${refused}`))
}
const wecomBaseUrl = () => baseUrlOf("WECOM_BASE_URL", WeComClient.defaultBaseUrl)
const feishuBaseUrl = () => baseUrlOf("FEISHU_BASE_URL", FeishuClient.defaultBaseUrl)

/** The app id and secret from the environment; missing ones are a usage error naming them (exit 2). */
const credentials = (vendor: string, idVariable: string, secretVariable: string) => {
  const id = env(idVariable)
  const secret = env(secretVariable)
  if (id !== undefined && secret !== undefined) return Effect.succeed({ id, secret })
  const names = [id === undefined ? idVariable : "", secret === undefined ? secretVariable : ""].filter((n) => n)
  return Effect.fail(CliExit.usage(
    `${names.join(" and ")} ${names.length === 1 ? "is" : "are"} not set: set the ${vendor} app's credentials in the ` +
      `environment, or try the command with --sandbox (an in-process emulator) or --dry-run (validation only)`
  ))
}

/** What both vendor clients take from the flags: retry counting and call counting for progress, and --rate. */
const clientOptionsOf = (flags: Flags, counters: Progress.Counters) => ({
  retry: { onRetry: () => void counters.retries++ },
  transformClient: (client: HttpClient.HttpClient) =>
    client.pipe(HttpClient.tapRequest(() => Effect.sync(() => void counters.calls++))),
  ...(flags.rate === undefined ? {} : { rateLimit: { calls: flags.rate, window: "1 minute" } as const })
})

// =============================================================================
// WeCom
// =============================================================================

interface Target<S> {
  readonly target: string
  /** Fails with the clients' configuration errors (a refused base URL), which become exit code 2. */
  readonly layer: Layer.Layer<S, unknown>
  readonly secrets: () => ReadonlyArray<string>
}

const wecomTarget = Effect.fnUntraced(function*(
  file: string,
  layout: "students" | "parents",
  flags: Flags,
  counters: Progress.Counters
) {
  const faults = yield* parseFaults(flags.faults)
  const clientOptions = { ...clientOptionsOf(flags, counters), concurrency: flags.concurrency ?? 2 }
  if (flags.sandbox || flags.dryRun) {
    // A dry run never sends; it gets the in-process emulator so that not even a misconfigured target is touched.
    const directory = WeComTesting.make({ faults })
    if (flags.sandbox && !flags.dryRun) yield* SandboxSeed.wecomFromInput(directory, file, layout)
    const layer = SchoolContacts.layer.pipe(
      Layer.provide(WeComClient.layer({
        ...clientOptions,
        corpId: directory.corpId,
        secret: Redacted.make(directory.secret),
        baseUrl: "http://127.0.0.1"
      })),
      Layer.provide([WeComTesting.layerHttpClient(directory), RateLimit.layerMemory])
    )
    const target = flags.sandbox ? "sandbox" : yield* wecomBaseUrl()
    return { target, layer, secrets: () => [directory.secret, ...directory.issuedTokens()] }
  }
  const { id: corpId, secret } = yield* credentials("WeCom", "WECOM_CORP_ID", "WECOM_SECRET")
  const baseUrl = yield* wecomBaseUrl()
  const layer = SchoolContacts.layer.pipe(
    Layer.provide(WeComClient.layer({ ...clientOptions, corpId, secret: Redacted.make(secret), baseUrl })),
    Layer.provide([NodeHttpClient.layerUndici, RateLimit.layerMemory])
  )
  return { target: baseUrl, layer, secrets: () => [secret] }
})

/**
 * The CLI installs no tracer, so the span Effect's HTTP client opens for every request would never be exported. It
 * cost 140–170 µs of CPU per call (1.4–1.7 CPU-s per 1M students) and sent `traceparent` and `b3` headers to the
 * vendor. The clients' own spans (`WeComClient.post`, …) stay. Library users who install a tracer keep the HTTP
 * spans unless they set `HttpClient.TracerDisabledWhen` themselves.
 */
const withoutHttpSpans = Effect.provideService(HttpClient.TracerDisabledWhen, () => true)

const wecomRun = (command: string, file: string, layout: "students" | "parents", flags: Flags) =>
  Effect.gen(function*() {
    const counters = Progress.makeCounters()
    const t: Target<SchoolContacts.SchoolContacts> = yield* wecomTarget(file, layout, flags, counters)
    // The pipeline must keep as many chunks in flight as the client allows, or the client's cap is never reached.
    const spec = {
      command,
      file,
      layout,
      target: t.target,
      flags: { ...flags, concurrency: flags.concurrency ?? 2 },
      counters,
      secrets: t.secrets
    }
    return yield* Effect.gen(function*() {
      const school = yield* SchoolContacts.SchoolContacts
      return layout === "students"
        ? yield* Runner.run({ ...spec, endpoint: school.students })
        : yield* Runner.run({ ...spec, endpoint: school.parents })
    }).pipe(Effect.provide(t.layer), withoutHttpSpans, Effect.mapError(configToUsage))
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
    const faults = yield* parseFaults(flags.faults)
    const clientOptions = clientOptionsOf(flags, counters)
    const departments = Departments.layer(batchSize === undefined ? {} : { chunkSize: batchSize })
    let t: Target<Departments.Departments>
    if (flags.sandbox || flags.dryRun) {
      const directory = FeishuMock.make({ faults })
      t = {
        target: flags.sandbox ? "sandbox" : yield* feishuBaseUrl(),
        layer: departments.pipe(
          Layer.provide(FeishuClient.layer({
            ...clientOptions,
            appId: directory.appId,
            appSecret: Redacted.make(directory.appSecret),
            baseUrl: "http://127.0.0.1"
          })),
          Layer.provide(FeishuMock.layerHttpClient(directory))
        ),
        secrets: () => [directory.appSecret, ...directory.issuedTokens()]
      }
    } else {
      const { id: appId, secret } = yield* credentials("Feishu", "FEISHU_APP_ID", "FEISHU_APP_SECRET")
      const baseUrl = yield* feishuBaseUrl()
      t = {
        target: baseUrl,
        layer: departments.pipe(
          Layer.provide(FeishuClient.layer({
            ...clientOptions,
            appId,
            appSecret: Redacted.make(secret),
            baseUrl
          })),
          Layer.provide(NodeHttpClient.layerUndici)
        ),
        secrets: () => [secret]
      }
    }
    return yield* Effect.gen(function*() {
      const service = yield* Departments.Departments
      return yield* Runner.run({
        command: "feishu departments add",
        file,
        layout: "departments",
        target: t.target,
        endpoint: service.endpoint,
        flags: { ...flags, concurrency: flags.concurrency ?? 1 },
        chunkSize: batchSize,
        counters,
        secrets: t.secrets
      })
    }).pipe(Effect.provide(t.layer), withoutHttpSpans, Effect.mapError(configToUsage))
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
    const wecom = WeComTesting.make({ faults, callLogLimit: 1000 })
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
