/**
 * `dirsync wecom students update FILE --server URL --tenant ID` (and parents, and `dirsync feishu departments add`):
 * the file is read here, by the same
 * readers and flags as a run from this machine, and handed to a `dirsync serve` cluster, which runs it durably; this
 * command then follows the run's progress until it ends. Ctrl-C stops following, never the run.
 */
import type { RunInfo } from "@dirsync/server/RunStore"
import * as ServerClient from "@dirsync/server/ServerClient"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { basename } from "node:path"
import * as CliExit from "../../CliExit.ts"
import * as Input from "../../Input.ts"
import type * as Target from "../../Target.ts"
import * as Terminal from "../terminal.ts"

/** The CLI's input layout for a kind of run: the columns its readers expect. */
export const layoutOf = (kind: string): Input.Layout =>
  kind.startsWith("parents") ? "parents" : kind.startsWith("departments") ? "departments" : "students"

/** What a server cannot do for a run submitted to it, and why. */
const notWithServer = (flags: Target.Flags): string | undefined =>
  flags.sandbox
    ? "--sandbox runs here, against an emulator: leave out --server"
    : flags.dryRun
    ? "--dry-run checks here: leave out --server"
    : flags.journal !== undefined || flags.resume
    ? "--journal and --resume are the server's business: a submitted run resumes by itself after any crash"
    : flags.deadline !== undefined
    ? "--deadline is not supported with --server"
    : flags.failures !== undefined
    ? "--failures is not supported with --server yet: use --report"
    : undefined

const line = (info: RunInfo) =>
  `${info.state}: ${info.summary.applied} applied, ${info.summary.rejected} rejected, ${info.summary.failed} ` +
  `failed, ${info.summary.skipped} skipped; chunk ${info.chunksDone} of ${info.chunks}`

/** `--server URL --tenant ID` on a push command. */
export const submit = (args: {
  readonly command: string
  readonly kind: "students.update" | "parents.update" | "departments.add"
  readonly file: string
  readonly server: string
  readonly tenant: string | undefined
  readonly flags: Target.Flags
}) =>
  Effect.scoped(Effect.gen(function*() {
    const see = `; see \`dirsync ${args.command} --help\``
    if (args.tenant === undefined) return yield* CliExit.usage(`--server needs --tenant${see}`)
    const refused = notWithServer(args.flags)
    if (refused !== undefined) return yield* CliExit.usage(`${refused}${see}`)
    const layout = layoutOf(args.kind)
    const badMap = args.flags.map === undefined ? undefined : Input.parseMap(layout, args.flags.map)
    if (badMap !== undefined) return yield* CliExit.usage(badMap)

    const input = yield* Input.read(args.file, layout, Input.flagOptions(args.flags))
    const rows = (yield* Stream.runCollect(input).pipe(Effect.mapError((e) => CliExit.usage(e.message)))).map((r) => ({
      row: r.row,
      value: r.value,
      ...(r.rows === undefined ? {} : { rows: r.rows }),
      ...(r.problems === undefined ? {} : { problems: r.problems.map((p) => ({ field: p.field, message: p.message })) })
    }))

    const token = process.env["DIRSYNC_SERVER_TOKEN"]
    const client = yield* ServerClient.make({
      url: args.server,
      token: token === undefined || token.length === 0 ? undefined : Redacted.make(token)
    })
    // Nothing reached WeCom until the server accepted the run: every refusal here is exit 2.
    const { runId } = yield* client.submit({
      tenant: args.tenant,
      kind: args.kind,
      rows,
      options: {
        strict: args.flags.strict,
        ...(args.flags.concurrency === undefined ? {} : { concurrency: args.flags.concurrency })
      },
      source: args.file === "-" ? "standard input" : basename(args.file)
    }).pipe(Effect.mapError((e) => CliExit.usage(e.message)))
    const say = (text: string) => {
      if (!args.flags.json) process.stderr.write(`dirsync: ${Terminal.line(text)}\n`)
    }
    say(`run ${runId} submitted to ${args.server} (${rows.length} rows); following it (Ctrl-C stops following only)`)
    const final = yield* client.watch(runId, (info) => say(line(info))).pipe(
      Effect.mapError((e) =>
        CliExit.aborted(`${e.message}; the run ${runId} goes on on the server: GET ${args.server}/v1/runs/${runId}`)
      )
    )
    if (args.flags.report !== undefined) {
      const report = yield* client.report(runId).pipe(Effect.mapError((e) => CliExit.aborted(e.message)))
      const fs = yield* FileSystem.FileSystem
      yield* fs.writeFileString(args.flags.report, JSON.stringify(report, null, 2) + "\n").pipe(
        Effect.mapError((e) => CliExit.aborted(`--report ${args.flags.report}: ${e.message}`))
      )
    }
    if (args.flags.json) {
      process.stdout.write(
        JSON.stringify({ runId, state: final.state, summary: final.summary, error: final.error }) + "\n"
      )
    }
    if (final.state === "failed") {
      return yield* CliExit.aborted(`run ${runId} failed: ${final.error ?? "see its report"}`)
    }
    if (final.summary.applied < final.summary.total) return yield* CliExit.incomplete
  }))
