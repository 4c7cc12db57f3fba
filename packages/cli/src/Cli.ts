/**
 * The `dirsync` command tree (effect/cli): every subcommand, its flags and its help text.
 *
 * @since 0.1.0
 */
import * as Argument from "effect/cli/Argument"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as CliExit from "./CliExit.ts"
import * as Terminal from "./internal/terminal.ts"
import * as Version from "./internal/version.ts"
import type { Flags } from "./Target.ts"

/**
 * The released version; `test/Cli.test.ts` keeps it equal to package.json.
 *
 * @since 0.1.0
 * @category constants
 */
export const version: string = Version.version

// Loaded on first use, so `dirsync --version` and `--help` do not pay for the vendor clients and parsers, and one
// vendor's command does not load the other vendor.
const wecomCommands = Effect.promise(() => import("./internal/commands/wecom.ts"))
const feishuCommands = Effect.promise(() => import("./internal/commands/feishu.ts"))
const sandboxCommand = Effect.promise(() => import("./internal/commands/sandbox.ts"))
const checkCommands = Effect.promise(() => import("./internal/commands/check.ts"))
const demoCommand = Effect.promise(() => import("./internal/commands/demo.ts"))

const positive = (name: string) =>
  Flag.Int(name).pipe(
    Flag.filter((n) => n > 0, (n) => `--${name} must be a positive integer, got ${n}`),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  )

/**
 * A duration as people type one: `90s`, `10m`, `1h30m`, `500ms`; `undefined` for anything else, or for zero.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseDuration = (text: string): Duration.Duration | undefined => {
  const match = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text.trim())
  if (match === null || text.trim().length === 0) return undefined
  const [h, m, sec, ms] = match.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number]
  const millis = ((h * 60 + m) * 60 + sec) * 1000 + ms
  return millis > 0 && Number.isSafeInteger(millis) ? Duration.millis(millis) : undefined
}

const duration = (name: string) =>
  Flag.String(name).pipe(
    Flag.filterMap(
      (text) => Option.fromUndefinedOr(parseDuration(text)),
      (text) => `--${name} must be a duration such as 90s, 10m or 1h30m, got ${JSON.stringify(text)}`
    ),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  )

const optionalPath = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional, Flag.map(Option.getOrUndefined))

const writeFlags = {
  dryRun: Flag.Boolean("dry-run").pipe(
    Flag.withDescription("Validate and plan only; send no HTTP request at all"),
    Flag.withDefault(false)
  ),
  report: optionalPath("report", "Write a JSON report of every row to this path"),
  sandbox: Flag.Boolean("sandbox").pipe(
    Flag.withDescription("Run against an in-process emulator of the vendor instead of the real API"),
    Flag.withDefault(false)
  ),
  concurrency: positive("concurrency").pipe(
    Flag.withDescription("Calls in flight at once (default: 2 for WeCom, 1 for Feishu)")
  ),
  rate: positive("rate").pipe(
    Flag.withDescription("Calls per minute per endpoint (default: the vendor's documented limit)")
  ),
  journal: optionalPath("journal", "Record progress in this file so a killed run can be resumed"),
  resume: Flag.Boolean("resume").pipe(
    Flag.withDescription("Continue the run recorded in --journal"),
    Flag.withDefault(false)
  ),
  resendUnverified: Flag.Boolean("resend-unverified").pipe(
    Flag.withDescription(
      "With --resume: send again the rows an earlier run sent whose outcome stays unverified (check the vendor first: they may have been applied)"
    ),
    Flag.withDefault(false)
  ),
  strict: Flag.Boolean("strict").pipe(
    Flag.withDescription("Send nothing if any row is invalid"),
    Flag.withDefault(false)
  ),
  json: Flag.Boolean("json").pipe(
    Flag.withDescription("Print a machine-readable summary on stdout"),
    Flag.withDefault(false)
  ),
  deadline: duration("deadline").pipe(
    Flag.withDescription(
      "Stop sending once this much time has passed (e.g. 30m, 2h): chunks in flight finish, rows not reached are " +
        "reported skipped (DeadlineReached), exit 1"
    )
  ),
  circuitBreaker: Flag.Int("circuit-breaker").pipe(
    Flag.filter((n) => n >= 0, (n) => `--circuit-breaker must be 0 or more, got ${n}`),
    Flag.withDescription(
      "Abort (exit 1) after this many chunks in a row fail the same run-wide way: the vendor or its token endpoint " +
        "down, its rate limit, or tasks stuck past --poll-deadline (default 5; 0 never)"
    ),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  ),
  // Reading the input (issue 17): spreadsheets, other column names, standard input.
  format: Flag.Literals("format", ["csv", "json", "ndjson", "xlsx"]).pipe(
    Flag.withDescription("The input's format when the file name does not say it (required when FILE is -, stdin)"),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  ),
  sheet: optionalPath("sheet", "With an .xlsx input: the sheet to read (default: the first)"),
  map: Flag.String("map").pipe(
    Flag.withDescription("Column names to fields, e.g. 'name=姓名,student_userid=学号' (beside the built-in aliases)"),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  ),
  ignoreExtraColumns: Flag.Boolean("ignore-extra-columns").pipe(
    Flag.withDescription("Skip columns that are not fields, with a warning naming them (default: on for .xlsx)"),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  ),
  // Outputs to act on and the question before a real run (issue 17).
  failures: optionalPath(
    "failures",
    "Write the rejected and failed rows to this file, in the input's format and columns plus error_field, " +
      "error_code and error_message, ready to fix and feed back in"
  ),
  yes: Flag.Boolean("yes").pipe(
    Flag.withAlias("y"),
    Flag.withDescription("Do not ask before sending (a run without a terminal never asks)"),
    Flag.withDefault(false)
  ),
  faults: Flag.String("faults").pipe(
    Flag.withDescription("With --sandbox: inject faults, e.g. busy=0.05,5xx=0.01,drop=0.01,latency=10"),
    Flag.withHidden,
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  )
}

const file = Argument.String("file").pipe(
  Argument.withDescription("Input file: .csv, .xlsx, .json, .ndjson or .jsonl; - reads standard input (with --format)")
)

/** The flags of `dirsync wecom check` and `dirsync feishu check`: read-only calls, nothing written. */
const checkFlags_ = {
  sandbox: writeFlags.sandbox,
  json: writeFlags.json
}

const checkFlags = (flags: Flags) =>
  Effect.gen(function*() {
    if (flags.resume && flags.journal === undefined) return yield* CliExit.usage("--resume needs --journal <path>")
    if (flags.resendUnverified && !flags.resume) return yield* CliExit.usage("--resend-unverified needs --resume")
    if (flags.faults !== undefined && !flags.sandbox) return yield* CliExit.usage("--faults works only with --sandbox")
    return flags
  })

/** A write command's handler: checks the flags, then loads the command's module and runs it. */
const write = <M, A, E, R>(
  args: Flags,
  load: Effect.Effect<M>,
  run: (m: M, flags: Flags) => Effect.Effect<A, E, R>
) => Effect.flatMap(Effect.zip(checkFlags(args), load), ([flags, m]) => run(m, flags))

// =============================================================================
// wecom
// =============================================================================

const studentsUpdate = Command.make(
  "update",
  { file, ...writeFlags },
  (args) => write(args, wecomCommands, (c, flags) => c.students(args.file, flags))
).pipe(
  Command.withDescription("Update students with batch_update_student (100 per call)"),
  Command.withExamples([{
    command: "dirsync wecom students update students.csv --report report.json",
    description: "Update the students in students.csv and write a report"
  }])
)

const parentsUpdate = Command.make(
  "update",
  { file, ...writeFlags },
  (args) => write(args, wecomCommands, (c, flags) => c.parents(args.file, flags))
).pipe(
  Command.withDescription(
    "Update parents with batch_update_parent (100 per call); CSV rows sharing parent_userid merge into one parent"
  )
)

const wecom = Command.make("wecom").pipe(
  Command.withDescription("WeCom (企业微信) school contacts. Credentials: WECOM_CORP_ID, WECOM_SECRET, WECOM_BASE_URL"),
  Command.withSubcommands([
    Command.make("students").pipe(
      Command.withDescription("Students of the school contacts"),
      Command.withSubcommands([studentsUpdate])
    ),
    Command.make("parents").pipe(
      Command.withDescription("Parents of the school contacts"),
      Command.withSubcommands([parentsUpdate])
    ),
    Command.make("check", checkFlags_, (args) => Effect.flatMap(checkCommands, (c) => c.wecom(args))).pipe(
      Command.withDescription(
        "Check the credentials and the app's access to school contacts with read-only calls; nothing is written"
      )
    )
  ])
)

// =============================================================================
// feishu
// =============================================================================

const departmentsAdd = Command.make(
  "add",
  {
    file,
    ...writeFlags,
    batchSize: positive("batch-size").pipe(
      Flag.withDescription("Departments per batch_add call (Feishu documents no maximum; default 50)")
    ),
    pollDeadline: duration("poll-deadline").pipe(
      Flag.withDescription(
        "How long to poll one batch task before reporting its rows as outcome unknown (default 10m)"
      )
    )
  },
  (args) =>
    write(args, feishuCommands, (c, flags) => c.departments(args.file, flags, args.batchSize, args.pollDeadline))
)
  .pipe(
    Command.withDescription(
      "Create departments with department/batch_add and poll each task; parents are created before their children"
    )
  )

const feishu = Command.make("feishu").pipe(
  Command.withDescription("Feishu contacts. Credentials: FEISHU_APP_ID, FEISHU_APP_SECRET, FEISHU_BASE_URL"),
  Command.withSubcommands([
    Command.make("departments").pipe(
      Command.withDescription("Departments of the contacts"),
      Command.withSubcommands([departmentsAdd])
    ),
    Command.make("check", checkFlags_, (args) => Effect.flatMap(checkCommands, (c) => c.feishu(args))).pipe(
      Command.withDescription(
        "Check the credentials and the app's contact scope and permissions with read-only calls; nothing is written"
      )
    )
  ])
)

// =============================================================================
// sandbox and demo
// =============================================================================

const sandbox = Command.make("sandbox", {
  // Read as text and checked by the command: a bad port is one line (exit 2), not the whole help page.
  port: Flag.String("port").pipe(
    Flag.withDescription("Port on 127.0.0.1, 0 to 65535 (default 0: a free port)"),
    Flag.withDefault("0")
  ),
  faults: Flag.String("faults").pipe(
    Flag.withDescription(
      "Faults to inject: busy=SHARE,5xx=SHARE,drop=SHARE,latency=MS,token-ttl=S,rate=PER_MIN,seed=N,script=CODE;CODE"
    ),
    Flag.withDefault("")
  ),
  rate: positive("rate").pipe(Flag.withDescription("Calls per minute per endpoint the sandbox allows")),
  seed: optionalPath("seed", "JSON file with the directory's initial students, parents, classes and departments")
}, (args) => Effect.flatMap(sandboxCommand, (c) => c.sandbox(args))).pipe(
  Command.withDescription(
    "Run a local HTTP emulator of WeCom and Feishu on 127.0.0.1 and print the environment that points dirsync at it"
  )
)

const demo = Command.make("demo", {}, () => Effect.flatMap(demoCommand, (c) => c.demo)).pipe(
  Command.withDescription("Run the three write commands on the files in examples/ against an in-process sandbox")
)

/**
 * The root command.
 *
 * @since 0.1.0
 * @category commands
 */
export const root = Command.make("dirsync").pipe(
  Command.withDescription(
    "Push school rosters and org charts into WeCom school contacts and Feishu contacts, safely, at the speed the vendors allow."
  ),
  Command.withSubcommands([wecom, feishu, sandbox, demo])
)

/**
 * The environment as the CLI reads it: values trimmed, and blank ones missing, so `WECOM_SECRET=" "` reads as not
 * set rather than as a one-space secret.
 *
 * @since 0.2.0
 * @category configuration
 */
export const environment = (env: Readonly<Record<string, string | undefined>>): ConfigProvider.ConfigProvider => {
  const trimmed: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) {
    const v = value?.trim()
    if (v !== undefined && v.length > 0) trimmed[key] = v
  }
  return ConfigProvider.fromEnv({ env: trimmed })
}

/** The global console with `log` going to stderr as well. */
const toStderr: Console.Console = Object.assign(Object.create(console) as Console.Console, {
  log: (...args: ReadonlyArray<unknown>) => console.error(...args)
})

/**
 * Help and `--version` go to stdout as asked; the help shown beside a usage error goes to stderr with the error, so
 * stdout carries only what a command prints (with `--json`, exactly one object).
 */
const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? CliOutput.defaultPresenter.present(event).pipe(Effect.provideService(Console.Console, toStderr))
      : CliOutput.defaultPresenter.present(event)
}

/**
 * Runs the command tree on `argv` (as `process.argv`: the first two entries are skipped). Parse errors become exit
 * code 2; every failure is printed as one line without a stack trace. Commands read their configuration (credentials,
 * base URLs) through Effect `Config` from the {@link environment} of this process.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>) => {
  const json = argv.slice(2).includes("--json")
  // `--json` promises exactly one object on stdout, also on failure: the runner prints it when it got that far.
  const end = (code: number, message: string, jsonPrinted: boolean, printed = false) =>
    Effect.sync(() => {
      if (message.length > 0 && !printed) process.stderr.write(`dirsync: ${Terminal.line(message)}\n`)
      if (json && !jsonPrinted) {
        process.stdout.write(
          `${JSON.stringify({ error: Terminal.scrub(message || "usage error"), exitCode: code })}\n`
        )
      }
    })
  return Command.runWith(root, { version })(argv.slice(2)).pipe(
    Effect.provideService(CliOutput.Presenter, presenter),
    Effect.provideService(ConfigProvider.ConfigProvider, environment(process.env)),
    Effect.catch((e: unknown) => {
      if (e instanceof CliExit.CliExit) {
        if (e.code === 3) return Effect.fail(e) // the summary already said it
        return Effect.andThen(end(e.code, e.message, e.json === true), Effect.fail(e))
      }
      if (CliError.isCliError(e)) {
        // The parser already printed its error (and the help) on stderr; `--json` gets the same sentences.
        const errors = e._tag === "ShowHelp" ? e.errors : [e]
        const detail = errors.map((x) => x.message).join("; ") || "usage error; see --help"
        const exit = new CliExit.CliExit({ code: 2, message: "" })
        return Effect.andThen(end(2, detail, false, true), Effect.fail(exit))
      }
      const message = `unexpected error: ${e instanceof Error ? e.message : String(e)}`
      return Effect.andThen(end(1, message, false), Effect.fail(CliExit.aborted("")))
    }),
    // A defect is a bug, but the user still gets one line and exit 1, never a stack trace.
    Effect.catchDefect((defect) => {
      const message = `unexpected error: ${defect instanceof Error ? defect.message : String(defect)}`
      return Effect.andThen(end(1, message, false), Effect.fail(CliExit.aborted("")))
    })
  )
}
