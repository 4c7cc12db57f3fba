/**
 * The `dirsync` command tree (effect/cli): every subcommand, its flags and its help text.
 *
 * @since 0.1.0
 */
import * as Argument from "effect/cli/Argument"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as Completions from "effect/cli/Completions"
import * as Flag from "effect/cli/Flag"
import * as TerminalCapabilities from "effect/cli/TerminalCapabilities"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
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
const planCommands = Effect.promise(() => import("./internal/commands/plan.ts"))
const feishuPlanCommands = Effect.promise(() => import("./internal/commands/feishuPlan.ts"))
const demoCommand = Effect.promise(() => import("./internal/commands/demo.ts"))
// The server's modules (Effect Cluster, the Postgres driver) load only for `serve` and `--server`.
const serveCommand = Effect.promise(() => import("./internal/commands/serve.ts"))
const remoteCommand = Effect.promise(() => import("./internal/commands/remote.ts"))

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
    Flag.withDescription(
      "Only with --sandbox: inject faults into the emulator, e.g. busy=0.05,5xx=0.01,drop=0.01,latency=10 " +
        "(the grammar of dirsync sandbox --faults)"
    ),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  )
}

/** `--server URL --tenant ID`: hand the run to a `dirsync serve` cluster instead of sending from here. */
const serverFlags = {
  server: optionalPath(
    "server",
    "Submit the run to a dirsync server (dirsync serve) at this URL and follow its progress; the token is " +
      "DIRSYNC_SERVER_TOKEN. The rows are read here, with the same readers and flags"
  ),
  tenant: optionalPath("tenant", "With --server: the tenant (as in the server's config) the run is for")
}

/** The push commands' handler: to a server when `--server` is given, else the run from here. */
const pushOrSubmit = <A, E, R>(
  command: string,
  kind: "students.update" | "parents.update" | "departments.add",
  args: Flags & { readonly file: string; readonly server: string | undefined; readonly tenant: string | undefined },
  local: Effect.Effect<A, E, R>
) => {
  const server = args.server
  return server === undefined
    ? args.tenant === undefined
      ? local
      : Effect.fail(CliExit.usage(`--tenant needs --server; see \`dirsync ${command} --help\``))
    : Effect.flatMap(
      Effect.zip(checkFlags(args, command), remoteCommand),
      ([flags, c]) => c.submit({ command, kind, file: args.file, server, tenant: args.tenant, flags })
    )
}

const file = Argument.String("file").pipe(
  Argument.withDescription("Input file: .csv, .xlsx, .json, .ndjson or .jsonl; - reads standard input (with --format)")
)

/** The flags of `dirsync wecom check` and `dirsync feishu check`: read-only calls, nothing written. */
const checkCommandFlags = {
  sandbox: writeFlags.sandbox,
  json: writeFlags.json
}

/** Flags that do not go together: one line, and where the help is (as the parser's own usage errors say it). */
const checkFlags = (flags: Flags, command: string) => {
  const usage = (message: string) => CliExit.usage(`${message}; see \`dirsync ${command} --help\``)
  return Effect.gen(function*() {
    if (flags.resume && flags.journal === undefined) return yield* usage("--resume needs --journal <path>")
    if (flags.resendUnverified && !flags.resume) return yield* usage("--resend-unverified needs --resume")
    if (flags.faults !== undefined && !flags.sandbox) return yield* usage("--faults works only with --sandbox")
    return flags
  })
}

// =============================================================================
// Help
// =============================================================================

/**
 * A section of a command's `--help` beyond what effect/cli renders (flags, arguments, examples): the input columns,
 * the exit codes.
 *
 * @since 0.3.0
 * @category help
 */
export interface HelpSection {
  readonly title: string
  /** Rows of two cells (a name and what it means), or one cell for a sentence. */
  readonly rows: ReadonlyArray<readonly [string, string] | readonly [string]>
}

/**
 * The extra help sections of a command, carried as an annotation into effect/cli's help document.
 *
 * @since 0.3.0
 * @category help
 */
export const HelpSections = Context.Reference<ReadonlyArray<HelpSection>>("@dirsync/cli/Cli/HelpSections", {
  defaultValue: () => []
})

const aliases = (examples: string): readonly [string] => [
  `Chinese headers (${examples}) and English variants are accepted as aliases; --map 'field=Column,…' names any ` +
  "other header, and --ignore-extra-columns skips columns that are no field. .json and .ndjson items use the field " +
  "names."
]

const writeExitCodes: HelpSection = {
  title: "EXIT CODES",
  rows: [
    ["0", "every row applied (with --dry-run: every row valid)"],
    ["3", "finished, with rows rejected, failed or skipped: see --report or --failures"],
    ["2", "usage or configuration error (flag, file, credentials): nothing was sent"],
    [
      "1",
      "aborted: credentials or permissions refused, --deadline passed, circuit breaker, or the run could not finish"
    ],
    ["130, 143", "interrupted (Ctrl-C) or terminated (SIGTERM); with --journal, the --resume command is printed"]
  ]
}

const checkExitCodes: HelpSection = {
  title: "EXIT CODES",
  rows: [
    ["0", "every check passed"],
    ["1", "a check failed: the line says which permission or setting is missing"],
    ["2", "missing or refused configuration (credentials, base URL): nothing was sent"]
  ]
}

const studentColumns: HelpSection = {
  title: "INPUT COLUMNS",
  rows: [
    ["student_userid", "the student to update (required)"],
    ["new_student_userid", "a new userid for the student (WeCom allows one rename)"],
    ["name", "1 to 32 characters"],
    ["mobile", "digits, + and -"],
    ["department", "class ids joined by ; (e.g. 1;2), at most 20"],
    ["Columns: student_userid,new_student_userid,name,mobile,department; an empty cell leaves the field as it is."],
    aliases("学号, 姓名, 手机, 班级, as in WeCom's import template")
  ]
}

const parentColumns: HelpSection = {
  title: "INPUT COLUMNS",
  rows: [
    ["parent_userid", "the parent to update (required)"],
    ["new_parent_userid", "a new userid for the parent (WeCom allows one rename)"],
    ["mobile", "the parent's mobile"],
    ["student_userid", "one child of the parent"],
    ["relation", "how the parent is related to that child, e.g. 爸爸"],
    [
      "Long format, one row per parent and child: parent_userid,new_parent_userid,mobile,student_userid,relation. " +
      "Rows sharing parent_userid merge into one parent (at most 10 children)."
    ],
    aliases("家长账号, 家长手机, 学号, 关系, as in WeCom's import template")
  ]
}

const departmentColumns: HelpSection = {
  title: "INPUT COLUMNS",
  rows: [
    ["id", "the department's custom id (without one, Feishu chooses it)"],
    ["name", "its name (required)"],
    ["parent_id", "the parent department's id, 0 for the root (required)"],
    ["leader_user_id", "the leader's user id"],
    ["leader_open_id", "the leader's open id"],
    ["create_group_chat", "true/false/1/0: create the department's group chat"],
    ["Columns: id,name,parent_id,leader_user_id,leader_open_id,create_group_chat; parents are created first."],
    aliases("部门ID, 部门名称, 上级部门ID, 负责人")
  ]
}

const renderSection = (section: HelpSection, bold: (s: string) => string): string => {
  const width = Math.max(0, ...section.rows.map((r) => (r.length === 2 ? r[0].length : 0))) + 4
  const lines = section.rows.map((r) => (r.length === 2 ? `  ${r[0].padEnd(width)}${r[1]}` : `  ${r[0]}`))
  return `\n${bold(section.title)}\n${lines.join("\n")}`
}

/** A write command's handler: checks the flags, then loads the command's module and runs it. */
const write = <M, A, E, R>(
  command: string,
  args: Flags,
  load: Effect.Effect<M>,
  run: (m: M, flags: Flags) => Effect.Effect<A, E, R>
) => Effect.flatMap(Effect.zip(checkFlags(args, command), load), ([flags, m]) => run(m, flags))

// =============================================================================
// wecom
// =============================================================================

const studentsUpdate = Command.make(
  "update",
  { file, ...writeFlags, ...serverFlags },
  (args) =>
    pushOrSubmit(
      "wecom students update",
      "students.update",
      args,
      write("wecom students update", args, wecomCommands, (c, flags) => c.students(args.file, flags))
    )
).pipe(
  Command.withDescription("Update students with batch_update_student (100 per call)"),
  Command.annotate(HelpSections, [studentColumns, writeExitCodes]),
  Command.withExamples([
    {
      command: "dirsync wecom students update students.xlsx --dry-run",
      description: "Check every row of an Excel export (Chinese template headers are fine) without sending anything"
    },
    {
      command:
        "dirsync wecom students update students.csv --journal students.journal --report report.json --failures failed.csv",
      description:
        "Update, keep a journal to resume from, and write the rows that did not apply to fix and feed back in"
    }
  ])
)

const parentsUpdate = Command.make(
  "update",
  { file, ...writeFlags, ...serverFlags },
  (args) =>
    pushOrSubmit(
      "wecom parents update",
      "parents.update",
      args,
      write("wecom parents update", args, wecomCommands, (c, flags) => c.parents(args.file, flags))
    )
).pipe(
  Command.withDescription(
    "Update parents with batch_update_parent (100 per call); CSV rows sharing parent_userid merge into one parent"
  ),
  Command.annotate(HelpSections, [parentColumns, writeExitCodes]),
  Command.withExamples([
    {
      command: "dirsync wecom parents update parents.csv --sandbox",
      description: "Try the file against an in-process emulator first: every row's fate, nothing sent to WeCom"
    },
    {
      command: "export-parents | dirsync wecom parents update - --format ndjson --json --yes",
      description: "Read NDJSON from standard input in a script; one JSON summary on stdout"
    }
  ])
)

// =============================================================================
// wecom plan / apply / sync (issue 18)
// =============================================================================

function rosterReadingFlags(kind: "students"): {
  studentsFormat: Flag.Flag<"csv" | "json" | "ndjson" | "xlsx" | undefined>
  studentsSheet: Flag.Flag<string | undefined>
  studentsMap: Flag.Flag<string | undefined>
}
function rosterReadingFlags(kind: "parents"): {
  parentsFormat: Flag.Flag<"csv" | "json" | "ndjson" | "xlsx" | undefined>
  parentsSheet: Flag.Flag<string | undefined>
  parentsMap: Flag.Flag<string | undefined>
}
function rosterReadingFlags(kind: "students" | "parents") {
  const example = kind === "students" ? "'student_userid=学生编码,name=学生'" : "'parent_userid=家长编码,relation=称谓'"
  return {
    [`${kind}Format`]: Flag.Literals(`${kind}-format`, ["csv", "json", "ndjson", "xlsx"]).pipe(
      Flag.withDescription(
        `The ${kind} file's format when its name does not say it (required when --${kind} is -, standard input)`
      ),
      Flag.optional,
      Flag.map(Option.getOrUndefined)
    ),
    [`${kind}Sheet`]: optionalPath(
      `${kind}-sheet`,
      `With an .xlsx ${kind} file: the sheet to read (default: the first); one workbook may hold both, each ` +
        "kind on its own sheet"
    ),
    [`${kind}Map`]: Flag.String(`${kind}-map`).pipe(
      Flag.withDescription(`The ${kind} file's column names to fields, e.g. ${example} (beside the built-in aliases)`),
      Flag.optional,
      Flag.map(Option.getOrUndefined)
    )
  }
}

const planFlags = {
  students: optionalPath("students", "The students file (any input format); at least one of --students and --parents"),
  parents: optionalPath("parents", "The parents file, one row per parent and child"),
  prune: Flag.Boolean("prune").pipe(
    Flag.withDescription("Also delete the students (parents) WeCom has and the students (parents) file does not list"),
    Flag.withDefault(false)
  ),
  maxDelete: Flag.String("max-delete").pipe(
    Flag.withDescription(
      "With --prune: the most deletes of a kind allowed, a count (120) or a share (25%); default: refuse more than " +
        "50 and more than 20% of them (WeCom replace_user's rule)"
    ),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  ),
  sandbox: Flag.Boolean("sandbox").pipe(
    Flag.withDescription("Run against an in-process emulator holding the classes the roster names and no users"),
    Flag.withDefault(false)
  ),
  faults: writeFlags.faults,
  rate: writeFlags.rate,
  concurrency: writeFlags.concurrency,
  ignoreExtraColumns: Flag.Boolean("ignore-extra-columns").pipe(
    Flag.withDescription(
      "Skip columns of either roster file that are not fields, with a warning naming them (default: on for .xlsx)"
    ),
    Flag.optional,
    Flag.map(Option.getOrUndefined)
  ),
  // How each roster file is read: per file, since one --map cannot name both layouts' columns and one --format
  // would misread the other file when only one of them is standard input.
  ...rosterReadingFlags("students"),
  ...rosterReadingFlags("parents"),
  json: Flag.Boolean("json").pipe(
    Flag.withDescription("Print one JSON object on stdout (summary, plan file, exit code)"),
    Flag.withDefault(false)
  )
}

const applyFlags = {
  journal: optionalPath(
    "journal",
    "Record progress so a killed apply can be resumed: one journal per step, J.createStudents, J.createParents, …"
  ),
  resume: writeFlags.resume,
  resendUnverified: writeFlags.resendUnverified,
  report: optionalPath(
    "report",
    "Write a JSON report of every action (step, userid, roster rows, outcome); .json only, not .html"
  ),
  yes: writeFlags.yes,
  circuitBreaker: writeFlags.circuitBreaker,
  deadline: duration("deadline").pipe(
    Flag.withDescription(
      "Stop sending once this much time has passed since the first write (e.g. 30m): chunks in flight finish, " +
        "the actions not reached are reported skipped (DeadlineReached), exit 1; --resume with the journal continues"
    )
  )
}

const planExitCodes: HelpSection = {
  title: "EXIT CODES",
  rows: [
    ["0", "no changes: WeCom already matches the roster"],
    ["4", "changes pending: the plan changes something (like terraform plan -detailed-exitcode)"],
    ["2", "usage or configuration error, or the plan deletes more than --max-delete allows (printed first)"],
    ["1", "reading the school failed (the message names the class)"]
  ]
}

const applyExitCodes: HelpSection = {
  title: "EXIT CODES",
  rows: [
    ["0", "every action applied (or the plan had none)"],
    ["3", "finished, with actions failed or skipped: see --report; a step with failures stops the later steps"],
    [
      "2",
      "nothing sent: a wrong or edited plan file, another corp, the school changed since the plan (--refresh), a " +
      "journal to --resume, or the question declined"
    ],
    ["1", "aborted: credentials or permissions refused, --deadline passed, or the apply could not finish"],
    ["130, 143", "interrupted; with --journal, the --resume command is printed"]
  ]
}

const syncExitCodes: HelpSection = {
  title: "EXIT CODES",
  rows: [
    ["0", "no changes, or every action applied"],
    ["4", "changes pending and not applied: no terminal to confirm on and no --yes"],
    ["3", "applied, with actions failed or skipped"],
    ["2", "usage error, delete threshold, the school changed at the question, or the question declined"],
    ["1", "reading the school failed, or the apply aborted"]
  ]
}

const planStepsSection: HelpSection = {
  title: "STEPS",
  rows: [
    ["createStudents", "batch_create_student: new pupils, before any parent names them"],
    ["createParents", "batch_create_parent: new parents with their children"],
    ["updateParents", "batch_update_parent: mobile, children (the complete list), renames"],
    ["updateStudents", "batch_update_student: name, mobile, classes, renames"],
    ["deleteParents", "batch_delete_parent (--prune)"],
    ["deleteStudents", "batch_delete_student (--prune), after their parents"]
  ]
}

const wecomPlan = Command.make("plan", {
  ...planFlags,
  out: optionalPath("out", "Write the plan to this file, for dirsync wecom apply")
}, (args) => Effect.flatMap(planCommands, (c) => c.plan(args))).pipe(
  Command.withDescription(
    "Compare the roster with what WeCom holds and show the difference: counts, then each change field by field"
  ),
  Command.annotate(HelpSections, [planStepsSection, planExitCodes]),
  Command.withExamples([
    {
      command: "dirsync wecom plan --students students.csv --parents parents.csv --out plan.json",
      description: "Show what would change and save the plan; exit 4 when something would"
    },
    {
      command:
        "dirsync wecom plan --students students.xlsx --parents parents.xlsx --prune --max-delete 10% --out plan.json",
      description: "Also delete leavers, refusing the plan when it deletes more than 10% of a kind"
    }
  ])
)

const wecomApply = Command.make("apply", {
  plan: Argument.String("plan").pipe(Argument.withDescription("The plan file dirsync wecom plan --out wrote")),
  ...applyFlags,
  refresh: Flag.Boolean("refresh").pipe(
    Flag.withDescription(
      "When the school changed since the plan, re-plan from the plan's roster files (if unchanged) instead of refusing"
    ),
    Flag.withDefault(false)
  ),
  sandbox: planFlags.sandbox,
  faults: planFlags.faults,
  rate: planFlags.rate,
  concurrency: planFlags.concurrency,
  json: Flag.Boolean("json").pipe(
    Flag.withDescription("Print one JSON object on stdout (summary per step, report, exit code)"),
    Flag.withDefault(false)
  )
}, (args) => Effect.flatMap(planCommands, (c) => c.apply(args.plan, args))).pipe(
  Command.withDescription(
    "Apply exactly a saved plan, step by step, after checking the classes it touches have not changed since"
  ),
  Command.annotate(HelpSections, [planStepsSection, applyExitCodes]),
  Command.withExamples([
    {
      command: "dirsync wecom apply plan.json --journal term.journal --report applied.json",
      description: "Apply the plan with a journal to resume from and a report of every action"
    },
    {
      command: "dirsync wecom apply plan.json --journal term.journal --resume",
      description: "Continue an apply that was cut short: nothing applied is sent again"
    }
  ])
)

const wecomSync = Command.make("sync", {
  ...planFlags,
  ...applyFlags,
  out: optionalPath("out", "Also write the plan to this file (needed with --journal, to --resume with apply)")
}, (args) => Effect.flatMap(planCommands, (c) => c.sync(args))).pipe(
  Command.withDescription(
    "Plan, show, confirm and apply in one go; without a terminal it applies only with --yes"
  ),
  Command.annotate(HelpSections, [planStepsSection, syncExitCodes]),
  Command.withExamples([
    {
      command: "dirsync wecom sync --students students.csv --parents parents.csv",
      description: "Show the plan and ask before applying it"
    },
    {
      command: "dirsync wecom sync --students s.csv --parents p.csv --prune --yes --out plan.json --journal j --json",
      description: "In a script: plan, apply and print one JSON object"
    }
  ])
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
    wecomPlan,
    wecomApply,
    wecomSync,
    Command.make("check", checkCommandFlags, (args) => Effect.flatMap(checkCommands, (c) => c.wecom(args))).pipe(
      Command.withDescription(
        "Check the credentials and the app's access to school contacts with read-only calls; nothing is written"
      ),
      Command.annotate(HelpSections, [checkExitCodes]),
      Command.withExamples([
        {
          command: "dirsync wecom check",
          description: "Check WECOM_CORP_ID and WECOM_SECRET, then the app's access to 家校通讯录"
        },
        { command: "dirsync wecom check --json", description: "The same, as one JSON object for a script" }
      ])
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
    ),
    ...serverFlags
  },
  (args) =>
    args.server !== undefined && (args.batchSize !== undefined || args.pollDeadline !== undefined)
      ? Effect.fail(
        CliExit.usage(
          "--batch-size and --poll-deadline are the server's with --server; see `dirsync feishu departments add --help`"
        )
      )
      : pushOrSubmit(
        "feishu departments add",
        "departments.add",
        args,
        write(
          "feishu departments add",
          args,
          feishuCommands,
          (c, flags) => c.departments(args.file, flags, args.batchSize, args.pollDeadline)
        )
      )
)
  .pipe(
    Command.withDescription(
      "Create departments with department/batch_add and poll each task; parents are created before their children"
    ),
    Command.annotate(HelpSections, [departmentColumns, writeExitCodes]),
    Command.withExamples([
      {
        command: "dirsync feishu departments add departments.csv --dry-run",
        description: "Check every row and the order parents come in, without sending anything"
      },
      {
        command: "dirsync feishu departments add departments.xlsx --sheet 部门 --journal departments.journal --yes",
        description: "Create the departments of one sheet, with a journal to --resume from if the run is cut short"
      }
    ])
  )

const feishuStepsSection: HelpSection = {
  title: "STEPS",
  rows: [
    ["createDepartments", "contact v2 batch_add (or v3 POST departments with --api v3): parents before children"],
    ["updateDepartments", "contact v3 PATCH: names, leaders and moves, top-down in the final tree"],
    ["deleteDepartments", "contact v3 DELETE (--prune): children before parents, only empty departments"]
  ]
}

const feishuPlanExitCodes: HelpSection = {
  title: "EXIT CODES",
  rows: [
    ["0", "no changes: Feishu already matches the file"],
    ["4", "changes pending: the plan changes something (like terraform plan -detailed-exitcode)"],
    ["2", "usage or configuration error, or the plan deletes more than --max-delete allows (printed first)"],
    ["1", "reading the departments failed (the message says why: e.g. outside the app's contact scope)"]
  ]
}

const feishuApplyExitCodes: HelpSection = {
  title: "EXIT CODES",
  rows: [
    ["0", "every action applied (or the plan had none)"],
    ["3", "finished, with actions failed or skipped: see --report; a step with failures stops the later steps"],
    [
      "2",
      "nothing sent: a wrong or edited plan file, another app, the tree changed since the plan (--refresh), a " +
      "journal to --resume, or the question declined"
    ],
    ["1", "aborted: credentials or permissions refused, --deadline passed, or the apply could not finish"],
    ["130, 143", "interrupted; with --journal, the --resume command is printed"]
  ]
}

const feishuPlanFlags = {
  departments: optionalPath(
    "departments",
    "The departments file (columns id, name, parent_id, leader_user_id; any input format)"
  ),
  root: optionalPath("root", "Plan below this department (its custom id) instead of the whole tenant (0)"),
  prune: Flag.Boolean("prune").pipe(
    Flag.withDescription("Also delete the departments below the root that the file does not list (only empty ones)"),
    Flag.withDefault(false)
  ),
  maxDelete: planFlags.maxDelete,
  sandbox: Flag.Boolean("sandbox").pipe(
    Flag.withDescription("Run against an in-process emulator of an empty Feishu tenant"),
    Flag.withDefault(false)
  ),
  faults: writeFlags.faults,
  rate: writeFlags.rate,
  concurrency: writeFlags.concurrency,
  format: writeFlags.format,
  sheet: writeFlags.sheet,
  map: writeFlags.map,
  ignoreExtraColumns: writeFlags.ignoreExtraColumns,
  json: planFlags.json
}

const apiFlag = Flag.Literals("api", ["v2", "v3"]).pipe(
  Flag.withDescription(
    "How departments are created: v2 batch_add tasks (default; falls back to v3 if Feishu answers 404) or v3, one " +
      "call each with an idempotency token"
  ),
  Flag.optional,
  Flag.map(Option.getOrUndefined)
)

const feishuPlan = Command.make("plan", {
  ...feishuPlanFlags,
  out: optionalPath("out", "Write the plan to this file, for dirsync feishu apply")
}, (args) => Effect.flatMap(feishuPlanCommands, (c) => c.plan(args))).pipe(
  Command.withDescription(
    "Compare the departments file with Feishu's tree and show the difference: counts, then each change field by field"
  ),
  Command.annotate(HelpSections, [departmentColumns, feishuStepsSection, feishuPlanExitCodes]),
  Command.withExamples([
    {
      command: "dirsync feishu plan --departments departments.csv --out plan.json",
      description: "Show what would change and save the plan; exit 4 when something would"
    },
    {
      command: "dirsync feishu plan --departments org.xlsx --root D100 --prune --max-delete 5% --out plan.json",
      description: "Below one department only, also deleting what the file lacks, at most 5% of the departments"
    }
  ])
)

const feishuApply = Command.make("apply", {
  plan: Argument.String("plan").pipe(Argument.withDescription("The plan file dirsync feishu plan --out wrote")),
  ...applyFlags,
  api: apiFlag,
  refresh: Flag.Boolean("refresh").pipe(
    Flag.withDescription(
      "When the tree changed since the plan, re-plan from the plan's departments file (if unchanged) instead of refusing"
    ),
    Flag.withDefault(false)
  ),
  sandbox: feishuPlanFlags.sandbox,
  faults: feishuPlanFlags.faults,
  rate: feishuPlanFlags.rate,
  concurrency: feishuPlanFlags.concurrency,
  json: Flag.Boolean("json").pipe(
    Flag.withDescription("Print one JSON object on stdout (summary per step, report, exit code)"),
    Flag.withDefault(false)
  )
}, (args) => Effect.flatMap(feishuPlanCommands, (c) => c.apply(args.plan, args))).pipe(
  Command.withDescription("Apply exactly a saved plan, step by step, after checking the tree has not changed since"),
  Command.annotate(HelpSections, [feishuStepsSection, feishuApplyExitCodes]),
  Command.withExamples([
    {
      command: "dirsync feishu apply plan.json --journal org.journal --report applied.json",
      description: "Apply the plan with a journal to resume from and a report of every action"
    },
    {
      command: "dirsync feishu apply plan.json --api v3 --journal org.journal --resume",
      description: "Continue an apply that was cut short, creating through contact v3"
    }
  ])
)

const feishuSync = Command.make("sync", {
  ...feishuPlanFlags,
  ...applyFlags,
  api: apiFlag,
  out: optionalPath("out", "Also write the plan to this file (needed with --journal, to --resume with apply)")
}, (args) => Effect.flatMap(feishuPlanCommands, (c) => c.sync(args))).pipe(
  Command.withDescription("Plan, show, confirm and apply in one go; without a terminal it applies only with --yes"),
  Command.annotate(HelpSections, [feishuStepsSection, syncExitCodes]),
  Command.withExamples([
    { command: "dirsync feishu sync --departments departments.csv", description: "Show the plan and ask first" },
    {
      command: "dirsync feishu sync --departments d.csv --prune --yes --out plan.json --journal j --json",
      description: "In a script: plan, apply and print one JSON object"
    }
  ])
)

const feishu = Command.make("feishu").pipe(
  Command.withDescription("Feishu contacts. Credentials: FEISHU_APP_ID, FEISHU_APP_SECRET, FEISHU_BASE_URL"),
  Command.withSubcommands([
    Command.make("departments").pipe(
      Command.withDescription("Departments of the contacts"),
      Command.withSubcommands([departmentsAdd])
    ),
    feishuPlan,
    feishuApply,
    feishuSync,
    Command.make("check", checkCommandFlags, (args) => Effect.flatMap(checkCommands, (c) => c.feishu(args))).pipe(
      Command.withDescription(
        "Check the credentials and the app's contact scope and permissions with read-only calls; nothing is written"
      ),
      Command.annotate(HelpSections, [checkExitCodes]),
      Command.withExamples([
        {
          command: "dirsync feishu check",
          description: "Check FEISHU_APP_ID and FEISHU_APP_SECRET, the contact scope and the scopes batch_add needs"
        },
        { command: "dirsync feishu check --json", description: "The same, as one JSON object for a script" }
      ])
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
  seed: optionalPath("seed", "JSON file with the directory's initial students, parents, classes and departments"),
  demoSeed: Flag.Boolean("demo-seed").pipe(
    Flag.withDescription(
      "Start with the students, parents and classes the README and examples/ use (--seed adds to them)"
    ),
    Flag.withDefault(false)
  ),
  feishuV2: Flag.Literals("feishu-v2", ["on", "off"]).pipe(
    Flag.withDescription(
      "off: Feishu's contact v2 (batch_add, task/get) answers 404, as a retired API would; to try --api fallback"
    ),
    Flag.withDefault("on" as const)
  ),
  feishuV3Limits: Flag.Boolean("feishu-v3-limits").pipe(
    Flag.withDescription("Enforce Feishu's documented 50/s and 1,000/min per contact v3 department API (429)"),
    Flag.withDefault(false)
  )
}, (args) => Effect.flatMap(sandboxCommand, (c) => c.sandbox(args))).pipe(
  Command.withDescription(
    "Run a local HTTP emulator of WeCom and Feishu on 127.0.0.1 and print the environment that points dirsync at it"
  )
)

const serve = Command.make("serve", {
  config: Flag.String("config").pipe(
    Flag.withDescription("The tenants: a JSON file of { tenants: [{ id, vendor, corpId, secretEnv, schedules? }] }")
  ),
  databaseUrl: optionalPath(
    "database-url",
    "The shared Postgres of the cluster (or DIRSYNC_DATABASE_URL); without it, an embedded Postgres on this machine"
  ),
  dataDir: optionalPath("data-dir", "Without --database-url: the embedded Postgres's folder"),
  listen: Flag.String("listen").pipe(
    Flag.withDescription("The HTTP API's address, HOST:PORT (beyond loopback only with DIRSYNC_SERVER_TOKEN set)"),
    Flag.withDefault("127.0.0.1:8787")
  ),
  runnerAddress: optionalPath(
    "runner-address",
    "Where the other runners reach this one, HOST:PORT (default 127.0.0.1:34431)"
  ),
  runnerListen: optionalPath("runner-listen", "Where to listen for other runners when not --runner-address (NAT)"),
  egressIp: optionalPath(
    "egress-ip",
    "The IP address WeCom sees this runner's calls from: runners naming the same one share its per-IP budget"
  ),
  retention: optionalPath(
    "retention",
    "Delete finished runs and their history after this long (default 30d; 0 keeps all)"
  )
}, (args) => Effect.flatMap(serveCommand, (c) => c.serve(args))).pipe(
  Command.withDescription(
    "Run a runner of the dirsync server: many tenants' runs as durable workflows over Postgres, with an HTTP API"
  ),
  Command.withExamples([
    {
      command: "dirsync serve --config tenants.json",
      description: "One machine: an embedded Postgres in ~/.local/share/dirsync, the API on 127.0.0.1:8787"
    },
    {
      command:
        "dirsync serve --config tenants.json --database-url postgres://dirsync@db/dirsync --runner-address 10.0.0.5:34431 --listen 0.0.0.0:8787",
      description: "One runner of several sharing one Postgres (DIRSYNC_SERVER_TOKEN set)"
    }
  ])
)

const demo = Command.make("demo", {}, () => Effect.flatMap(demoCommand, (c) => c.demo)).pipe(
  Command.withDescription("Run the three write commands on the files in examples/ against an in-process sandbox")
)

// The same script as the global `--completions` flag prints (effect/cli's generator over the whole tree).
const completions = Command.make(
  "completions",
  {
    shell: Argument.Literals("shell", ["bash", "zsh", "fish", "powershell"]).pipe(
      Argument.withDescription("The shell: bash, zsh, fish or powershell")
    )
  },
  ({ shell }): Effect.Effect<void> =>
    Effect.suspend(() => Console.log(Completions.generate(root.name, shell, Completions.fromCommand(root))))
).pipe(
  Command.withDescription(
    "Print a shell completion script, e.g. source <(dirsync completions bash) in ~/.bashrc"
  ),
  Command.withExamples([
    { command: "source <(dirsync completions bash)", description: "Complete dirsync commands and flags in bash" },
    {
      command: "dirsync completions fish > ~/.config/fish/completions/dirsync.fish",
      description: "Install the fish completions"
    }
  ])
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
  Command.withSubcommands([wecom, feishu, sandbox, serve, demo, completions])
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

/**
 * A parser message as one line: effect/cli puts its suggestion on lines of its own (`Did you mean this?`, then the
 * flag), which a printed line would show as `\n` escapes; here it reads `…; did you mean --dry-run?`.
 */
const oneLine = (message: string): string => {
  const [first = "", ...rest] = message.split("\n").map((l) => l.trim()).filter((l) => l.length > 0)
  const at = rest.findIndex((l) => /^did you mean\b/i.test(l))
  if (at === -1) return [first, ...rest].join(" ")
  const head = [first, ...rest.slice(0, at)].join(" ")
  const options = rest.slice(at + 1)
  return options.length === 0 ? head : `${head}; did you mean ${options.join(" or ")}?`
}

/**
 * The parser's errors as the lines to print: each on one line, and `--json` left out when it is refused only because
 * the command named is not one that prints JSON (`dirsync wecom nosuch --json`): the other error is the one to fix.
 *
 * @since 0.3.0
 * @category help
 */
export const usageMessages = (errors: ReadonlyArray<{ readonly message: string }>): ReadonlyArray<string> => {
  const messages = errors.map((e) => oneLine(e.message))
  const others = messages.filter((m) => !/^Unrecognized flag: --json\b/.test(m))
  return others.length === 0 ? messages : others
}

/**
 * The lines a usage error prints on stderr: each error, then where the whole story is, e.g. `see \`dirsync wecom
 * students update --help\``. Not the 40-line help: the one line that matters would scroll away under it.
 *
 * @since 0.3.0
 * @category help
 */
export const usageLines = (
  commandPath: ReadonlyArray<string>,
  errors: ReadonlyArray<{ readonly message: string }>
): ReadonlyArray<string> => [
  ...usageMessages(errors).map((message) => `dirsync: ${Terminal.line(message)}`),
  `see \`${commandPath.length === 0 ? "dirsync" : commandPath.map(Terminal.safe).join(" ")} --help\``
]

/**
 * Help and `--version` go to stdout as asked; help gets the command's {@link HelpSections} after effect/cli's own.
 * A usage error is {@link usageLines} on stderr, so stdout carries only what a command prints (with `--json`, exactly
 * one object).
 */
const presenter: CliOutput.Presenter = {
  present: (event) => {
    switch (event._tag) {
      case "InvalidInvocation":
        return Console.error(usageLines(event.commandPath, event.errors).join("\n"))
      case "Help":
        return Effect.gen(function*() {
          const { canColor } = yield* TerminalCapabilities.TerminalCapabilities
          const sections = Context.get(event.helpDoc.annotations, HelpSections)
          const bold = (s: string) => (canColor ? `\x1b[1m${s}\x1b[0m` : s)
          const extra = sections.map((section) => renderSection(section, bold)).join("\n")
          const help = CliOutput.defaultFormatter({ colors: canColor }).formatHelpDoc(event.helpDoc)
          yield* Console.log(extra.length === 0 ? help : `${help}\n${extra}`)
        })
      case "Version":
        return CliOutput.defaultPresenter.present(event)
    }
  }
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
        const detail = usageMessages(errors).join("; ") || "usage error; see --help"
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
