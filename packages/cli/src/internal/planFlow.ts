/**
 * What `wecom plan / apply / sync` and `feishu plan / apply / sync` do alike around their plans: the flag checks of
 * apply, the question before a real apply (the plan, its steps, its deletes), the answers for an empty plan and for a
 * sync without a terminal to confirm on. Each command says what its plan and its tenant are.
 */
import { Issues } from "@dirsync/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Schema from "effect/Schema"
import * as CliExit from "../CliExit.ts"
import * as Report from "../Report.ts"
import * as Confirm from "./confirm.ts"
import * as Files from "./files.ts"
import * as SchoolRoster from "./schoolRoster.ts"
import * as Terminal from "./terminal.ts"
import { count } from "./text.ts"

const RED = "\x1b[31m"
const RESET = "\x1b[0m"

/**
 * The body of a printed plan after its counts: "No changes: …" or the first changes field by field (deletes red on
 * a colour terminal), then each list (`Rejected rows:`, …) with its first ten lines and how many more.
 */
export const planBody = (options: {
  readonly empty: boolean
  readonly noChanges: string
  readonly changes: ReadonlyArray<{ readonly kind: string; readonly text: string }>
  readonly colour: boolean
  readonly lists: ReadonlyArray<
    { readonly title: string; readonly lines: ReadonlyArray<string>; readonly more: string }
  >
}): ReadonlyArray<string> => {
  const lines: Array<string> = []
  if (options.empty) lines.push(options.noChanges)
  else {
    lines.push("Changes (deletes first):")
    for (const line of options.changes) {
      const text = `  ${Terminal.line(line.text)}`
      lines.push(line.kind === "delete" && options.colour ? `${RED}${text}${RESET}` : text)
    }
  }
  for (const list of options.lists) {
    if (list.lines.length === 0) continue
    lines.push(list.title)
    for (const line of list.lines.slice(0, 10)) lines.push(`  ${Terminal.line(line)}`)
    if (list.lines.length > 10) {
      lines.push(`  … and ${count(list.lines.length - 10)} more${list.more}`)
    }
  }
  return lines
}

/** A usage error that ends by pointing at the command's help. */
export const usage = (command: string, message: string) =>
  CliExit.usage(`${message}; see \`dirsync ${command} --help\``)

/** The checks of `apply`'s flags that need no file: each a one-line usage error (exit 2). */
export const checkApplyFlags = (command: string, flags: {
  readonly resume: boolean
  readonly journal?: string | undefined
  readonly resendUnverified?: boolean | undefined
  readonly faults: string | undefined
  readonly sandbox: boolean
  readonly refresh: boolean
}) =>
  Effect.gen(function*() {
    if (flags.resume && flags.journal === undefined) return yield* usage(command, "--resume needs --journal <path>")
    if (flags.resendUnverified === true && !flags.resume) {
      return yield* usage(command, "--resend-unverified needs --resume")
    }
    if (flags.faults !== undefined && !flags.sandbox) return yield* usage(command, "--faults works only with --sandbox")
    if (flags.refresh && flags.resume) {
      return yield* usage(command, "--refresh makes a new plan, which a journal of the old one cannot continue")
    }
  })

/** Where a plan goes: its target's label, the tenant (`{ corpId }`, `{ appId }`) and how a sentence names it. */
export interface Tenant {
  readonly label: string
  readonly fields: Readonly<Record<string, string>>
  /** `corp ww…`, `app cli_…`. */
  readonly text: string
}

/** What the question shows besides the plan: the steps in order with their counts, and the deletes. */
export const previewSteps = (
  steps: ReadonlyArray<{ readonly step: string; readonly count: number }>,
  width: number,
  deletes: string | undefined
): ReadonlyArray<string> => [
  "Steps, in this order (a step with an action not applied stops the later ones):",
  ...steps.map(({ count: rows, step }) => `  ${step.padEnd(width)}${count(rows).padStart(8)}`),
  deletes === undefined ? "Deletes: none." : `Deletes: ${deletes}, cannot be undone (listed with - in the plan).`
]

/**
 * On a terminal, without `--yes`: the plan (unless `shown` already), the preview, then the question. A refusal is
 * exit 2, nothing sent.
 */
export const confirm = (options: {
  readonly yes: boolean
  readonly shown: boolean
  readonly render: () => string
  readonly preview: ReadonlyArray<string>
  readonly size: number
  readonly tenant: Tenant
}) =>
  Effect.gen(function*() {
    if (!Confirm.shouldAsk({ dryRun: false, yes: options.yes }, Confirm.terminal)) return
    const text = [
      ...(options.shown ? [] : [options.render()]),
      ...options.preview,
      `Apply these ${options.size} change(s) to ${Terminal.line(options.tenant.text)} → ${
        Terminal.line(Report.sanitizeTarget(options.tenant.label))
      }? [y/N] `
    ].join("\n")
    const answer = yield* Confirm.terminal.ask(text)
    if (!Confirm.accepts(answer)) {
      return yield* CliExit.usage(
        "not applied: the plan was not confirmed; nothing was sent (--yes applies without asking)"
      )
    }
  })

/** An apply whose plan has no changes: exit 0, said once (as JSON with `--json`). */
export const nothingToApply = (command: string, tenant: Tenant, path: string, json: boolean) =>
  json
    ? Console.log(JSON.stringify({
      command,
      target: Report.sanitizeTarget(tenant.label),
      ...tenant.fields,
      plan: Terminal.scrub(path),
      summary: { total: 0, applied: 0, rejected: 0, failed: 0, skipped: 0 },
      exitCode: 0
    }))
    : Console.log("Nothing to apply: the plan has no changes.")

/**
 * A sync without a terminal to confirm on and without `--yes`: planned only, exit 4 (the plan's JSON line, with
 * `--json`, from `planJson`).
 */
export const plannedOnly = (json: boolean, planJson: (extra: Readonly<Record<string, unknown>>) => string) =>
  Effect.gen(function*() {
    const message = "planned only: without a terminal to confirm on, sync applies only with --yes"
    if (json) yield* Console.log(planJson({ error: message, exitCode: 4 }))
    return yield* new CliExit.CliExit({ code: 4, message, json })
  })

// =============================================================================
// Plan files
// =============================================================================

/**
 * How an input file was read, as a plan file records it beside the file's name and SHA-256 (the vendor plan's own
 * `Source`), so that `apply --refresh` reads it again the same way: another sheet or `--map` would be another input.
 */
export const readingFields = {
  format: Schema.optionalKey(Schema.Literals(["csv", "json", "ndjson", "xlsx"])),
  sheet: Schema.optionalKey(Schema.String),
  map: Schema.optionalKey(Schema.String),
  ignoreExtraColumns: Schema.optionalKey(Schema.Boolean)
}

/** A recorded source's reading options, as the input reader takes them. */
export const readingOf = (source: SchoolRoster.Reading): SchoolRoster.Reading => ({
  format: source.format,
  sheet: source.sheet,
  map: source.map,
  ignoreExtraColumns: source.ignoreExtraColumns
})

/**
 * A plan file, decoded with its JSON Schema: a file that cannot be read or is not such a plan is a usage error (exit
 * 2) naming it, `notA` saying what it is not (`a dirsync plan file`) and `makeWith` the command that makes one.
 */
export const readPlanFile = <A>(
  path: string,
  json: Schema.Decoder<A>,
  notA: string,
  makeWith: string
): Effect.Effect<A, CliExit.CliExit, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const name = Terminal.line(path)
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) => CliExit.usage(`${name}: ${Files.describeError(e)}`))
    )
    return yield* Schema.decodeUnknownEffect(json)(text).pipe(
      Effect.mapError((e) =>
        CliExit.usage(`${name} is not ${notA} (${Terminal.line(Issues.format(e.issue))}); make one with ${makeWith}`)
      )
    )
  })

/** A plan file whose parts disagree: edited by hand after it was made (exit 2). */
export const edited = (path: string, what: string, makeWith: string): CliExit.CliExit =>
  CliExit.usage(`${Terminal.line(path)} was edited after it was made (${what}); make a new plan with ${makeWith}`)

/**
 * `--refresh` re-plans only from the very input the plan was made from: a source read from standard input (no
 * SHA-256) cannot be read again, and a file that cannot be read or whose SHA-256 changed is another input. Each is
 * `refuse`d, naming the file (`fileWords`: "the students file") or the input (`stdinWords`: "the students").
 */
export const checkSameSource = (
  source: { readonly file: string; readonly sha256?: string | undefined },
  words: { readonly file: string; readonly stdin: string },
  refuse: (why: string) => CliExit.CliExit
): Effect.Effect<void, CliExit.CliExit> =>
  Effect.gen(function*() {
    if (source.sha256 === undefined) return yield* refuse(`${words.stdin} were read from standard input`)
    const now = yield* SchoolRoster.sha256File(source.file).pipe(
      Effect.mapError(() => refuse(`${words.file} ${Terminal.line(source.file)} cannot be read`))
    )
    if (now !== source.sha256) {
      return yield* refuse(`${words.file} ${Terminal.line(source.file)} changed since the plan was made`)
    }
  })
