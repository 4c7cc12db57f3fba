/**
 * WeCom school contacts (家校通讯录) batch updates on the `@dirsync/core` batch pipeline: `batch_update_student` and
 * `batch_update_parent` as `Endpoint.Endpoint`s, plus `school/user/get` to check renames.
 *
 * **Details**
 *
 * - Rows are validated against every documented limit ({@link WeComSchema}) and across rows: ids that differ only in
 *   case are duplicates (every copy is rejected, naming the other rows); a rename target may not be another row's id
 *   or another row's target.
 * - Chunks of at most 100 rows. Partial failure is data: a reply with `result_list` fails the listed rows with their
 *   item codes and applies the rest; an errcode without `result_list` fails the whole chunk with that code (the
 *   pipeline aborts the run when the reason is fatal: credentials, permissions, a token that stayed invalid).
 * - Renames (`new_*_userid`) work once, so a chunk is never blindly resent after an ambiguous failure (no reply,
 *   HTTP 5xx, a timeout, -1): before the retry, each rename row of the chunk is checked with `school/user/get`; a
 *   rename that already happened is reported applied and left out of the resend. Rows without a rename are
 *   idempotent and are simply resent. The same check serves `verify` when a journaled run resumes.
 *
 * @since 0.1.0
 */
import { BatchPipeline, type Endpoint, Limit, Outcome, RowIndex, type RunJournal, VendorError } from "@dirsync/core"
import type { PipelineError } from "@dirsync/core/PipelineError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import { PATHS } from "./internal/endpoints.ts"
import { WeComClient } from "./WeComClient.ts"
import type * as WeComClientModule from "./WeComClient.ts"
import * as WeComErrcode from "./WeComErrcode.ts"
import type { WeComError } from "./WeComError.ts"
import * as WeComSchema from "./WeComSchema.ts"

// =============================================================================
// Service
// =============================================================================

/**
 * A user found by `school/user/get`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchoolUser {
  readonly userType: "student" | "parent"
  readonly userid: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The `batch_update_student` endpoint, for callers that run the pipeline themselves (the CLI). */
  readonly students: Endpoint.Endpoint<WeComSchema.StudentUpdate, WeComError, never>
  /** The `batch_update_parent` endpoint. */
  readonly parents: Endpoint.Endpoint<WeComSchema.ParentUpdate, WeComError, never>
  /** Runs `batch_update_student` over the rows; one outcome per input row, in input order. */
  readonly batchUpdateStudents: <EIn, RIn>(
    input: Stream.Stream<Endpoint.SourceRow, EIn, RIn>,
    options?: BatchPipeline.Options
  ) => Stream.Stream<Outcome.RowOutcome, WeComError | EIn | RunJournal.JournalError | PipelineError, RIn>
  /** Runs `batch_update_parent` over the rows. */
  readonly batchUpdateParents: <EIn, RIn>(
    input: Stream.Stream<Endpoint.SourceRow, EIn, RIn>,
    options?: BatchPipeline.Options
  ) => Stream.Stream<Outcome.RowOutcome, WeComError | EIn | RunJournal.JournalError | PipelineError, RIn>
  /** `school/user/get`: the student or parent with this userid, or none (errcode 60111). */
  readonly getUser: (userid: string) => Effect.Effect<Option.Option<SchoolUser>, WeComError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class SchoolContacts extends Context.Service<SchoolContacts, Service>()("@dirsync/wecom/SchoolContacts") {}

// =============================================================================
// Endpoints
// =============================================================================

/** What differs between the student and the parent endpoint. */
interface Kind<Item> {
  readonly name: string
  readonly path: string
  readonly listKey: "students" | "parents"
  readonly idField: "student_userid" | "parent_userid"
  readonly newIdField: "new_student_userid" | "new_parent_userid"
  readonly userType: SchoolUser["userType"]
  readonly schema: Schema.Decoder<Item>
  readonly id: (item: Item) => string
  readonly newId: (item: Item) => string | undefined
}

const studentKind: Kind<WeComSchema.StudentUpdate> = {
  name: "wecom.batch_update_student",
  path: PATHS.batchUpdateStudent,
  listKey: "students",
  idField: "student_userid",
  newIdField: "new_student_userid",
  userType: "student",
  schema: WeComSchema.StudentUpdate,
  id: (item) => item.student_userid,
  newId: (item) => item.new_student_userid
}

const parentKind: Kind<WeComSchema.ParentUpdate> = {
  name: "wecom.batch_update_parent",
  path: PATHS.batchUpdateParent,
  listKey: "parents",
  idField: "parent_userid",
  newIdField: "new_parent_userid",
  userType: "parent",
  schema: WeComSchema.ParentUpdate,
  id: (item) => item.parent_userid,
  newId: (item) => item.new_parent_userid
}

const rowList = (rows: ReadonlyArray<number>) => `${rows.length === 1 ? "row" : "rows"} ${rows.join(", ")}`

/**
 * Cross-row checks: keeps only lower-cased ids and row numbers, never whole rows.
 *
 * @since 0.1.0
 * @category checks
 */
export const crossRowChecks = <Item>(
  kind: Pick<Kind<Item>, "idField" | "newIdField" | "id" | "newId">
) =>
(): Endpoint.CrossRowChecks<Item> => {
  // Compact, off-heap key sets: a Map of strings per row would grow the JS heap with the file (docs/PERFORMANCE.md).
  const ids = RowIndex.make()
  const targets = RowIndex.make()
  const selfRenames: Array<number> = []
  return {
    observe: (valid) => {
      const key = Limit.idKey(kind.id(valid.item))
      ids.add(key, valid.row)
      const target = kind.newId(valid.item)
      if (target === undefined) return
      const targetKey = Limit.idKey(target)
      if (targetKey === key) selfRenames.push(valid.row)
      else targets.add(targetKey, valid.row)
    },
    finish: () => {
      const problems = new Map<number, { field: string; messages: Array<string> }>()
      const add = (row: number, field: string, message: string) => {
        const p = problems.get(row)
        if (p === undefined) problems.set(row, { field, messages: [message] })
        else p.messages.push(message)
      }
      for (const [key, rows] of ids.repeated()) {
        for (const row of rows) {
          add(
            row,
            kind.idField,
            `is also used by ${rowList(rows.filter((r) => r !== row))} (${JSON.stringify(key)}; ids compare ` +
              "case-insensitively); every copy is rejected"
          )
        }
      }
      for (const row of selfRenames) {
        add(row, kind.newIdField, `is the same id as ${kind.idField} (ids compare case-insensitively)`)
      }
      for (const [key, rows] of targets.entries()) {
        const owners = ids.rows(key)
        for (const row of rows) {
          if (owners !== undefined) {
            add(
              row,
              kind.newIdField,
              `is ${JSON.stringify(key)}, the ${kind.idField} of ${rowList(owners)}; renaming onto it would collide`
            )
          }
          if (rows.length > 1) {
            add(
              row,
              kind.newIdField,
              `is ${JSON.stringify(key)}, also the rename target of ${rowList(rows.filter((r) => r !== row))}`
            )
          }
        }
      }
      const rejected = new Map<number, Endpoint.Rejection>()
      for (const [row, p] of problems) {
        rejected.set(row, { field: p.field, message: p.messages.join("; "), reason: Outcome.LocalReason.Conflict })
      }
      return { rejected }
    }
  }
}

/**
 * One row's failure as the report shows it: code, catalogue name, and WeCom's message.
 *
 * @since 0.1.0
 * @category formatting
 */
export const itemFailure = (row: number, failure: WeComSchema.ItemFailure): Endpoint.ItemResult => {
  const entry = WeComErrcode.lookup(failure.errcode)
  return {
    row,
    status: "failed",
    code: failure.errcode,
    reason: WeComErrcode.classify(failure.errcode)._tag,
    message: `${failure.errcode} ${entry?.name ?? "UnknownCode"}${
      failure.errmsg ? `: ${failure.errmsg}` : entry ? `: ${entry.meaning}` : ""
    }`
  }
}

/**
 * Per-row results of one batch reply: rows listed in `result_list` (matched case-insensitively by id, or by rename
 * target) failed; every other row was applied.
 *
 * @since 0.1.0
 * @category decoding
 */
export const resultsOf = <Item>(
  kind: Pick<Kind<Item>, "idField" | "id" | "newId">,
  sent: ReadonlyArray<Endpoint.Valid<Item>>,
  reply: WeComSchema.BatchReply
): ReadonlyArray<Endpoint.ItemResult> => {
  const failures = new Map<string, WeComSchema.ItemFailure>()
  for (const f of reply.result_list ?? []) {
    const id = f[kind.idField]
    if (id !== undefined) failures.set(Limit.idKey(id), f)
  }
  return sent.map((v) => {
    const newId = kind.newId(v.item)
    const f = failures.get(Limit.idKey(kind.id(v.item))) ??
      (newId === undefined ? undefined : failures.get(Limit.idKey(newId)))
    return f === undefined ? { row: v.row, status: "applied" } : itemFailure(v.row, f)
  })
}

const makeEndpoint = <Item>(
  client: WeComClientModule.Service,
  kind: Kind<Item>,
  getUser: Service["getUser"]
): Endpoint.Endpoint<Item, WeComError, never> => {
  /**
   * Checks one rename row: applied when the target exists as the right kind of user and the old id is gone;
   * otherwise the row is safe to send (again): if the rename did not happen, sending it is the first rename; if the
   * target is taken by someone else, WeCom answers 60102 for that row.
   */
  const checkRename = (v: Endpoint.Valid<Item>, target: string) =>
    Effect.all([getUser(kind.id(v.item)), getUser(target)]).pipe(
      Effect.map(([before, after]): Endpoint.Verified =>
        Option.isNone(before) && Option.isSome(after) && after.value.userType === kind.userType
          ? {
            row: v.row,
            status: "applied",
            reason: Outcome.LocalReason.RenameVerified,
            message: `the reply was lost, but school/user/get shows ${JSON.stringify(kind.id(v.item))} is now ${
              JSON.stringify(target)
            }`
          }
          : { row: v.row, status: "resend" }
      )
    )

  const execute: Endpoint.Endpoint<Item, WeComError, never>["execute"] = (chunk) =>
    Effect.gen(function*() {
      const settled = new Map<number, Endpoint.ItemResult>()
      let remaining = chunk
      let ambiguous = false
      // One attempt: after a failure that may hide work (`outcomeUnknown`), first settle the rename rows the lost
      // request may have applied; then send what is left. The client sends it once (`retry: false`): this one retry
      // loop, under the client's policy, counts every attempt of the chunk, whatever failed.
      const attempt = Effect.gen(function*() {
        if (ambiguous) {
          const renames = remaining.flatMap((v) => {
            const target = kind.newId(v.item)
            return target === undefined ? [] : [{ v, target }]
          })
          for (const { target, v } of renames) {
            const verdict = yield* checkRename(v, target)
            if (verdict.status === "applied") settled.set(v.row, verdict)
          }
          remaining = remaining.filter((v) => !settled.has(v.row))
          ambiguous = false
        }
        if (remaining.length === 0) return
        const sent = remaining
        ambiguous = true
        const reply = yield* client.post(
          kind.path,
          { [kind.listKey]: sent.map((v) => v.item) },
          WeComSchema.BatchReply,
          { idempotent: false, retry: false, partialFailures: true }
        ).pipe(Effect.tapError((e) => Effect.sync(() => void (ambiguous = e.outcomeUnknown === true))))
        ambiguous = false
        for (const result of resultsOf(kind, sent, reply)) settled.set(result.row, result)
        remaining = []
      })
      const settleRenames = Effect.gen(function*() {
        for (const v of remaining) {
          const target = kind.newId(v.item)
          if (target === undefined) continue
          const verdict = yield* checkRename(v, target).pipe(
            Effect.orElseSucceed((): Endpoint.Verified => ({ row: v.row, status: "resend" }))
          )
          if (verdict.status === "applied") settled.set(v.row, verdict)
        }
      })
      return yield* client.retry(attempt).pipe(
        Effect.map(() => chunk.map((v) => settled.get(v.row)!)),
        // Retries ran out. Renames already confirmed (and, if the last reply was lost, renames confirmed now) did
        // apply: report them applied, not failed, or a re-run would try to rename an id that no longer exists.
        Effect.catch((e) =>
          Effect.gen(function*() {
            if (BatchPipeline.isFatal(e)) return yield* e
            if (ambiguous) yield* settleRenames
            if (settled.size === 0) return yield* e
            return chunk.map((v): Endpoint.ItemResult =>
              settled.get(v.row) ?? {
                row: v.row,
                status: "failed",
                code: e.code === 0 ? undefined : e.code,
                reason: e.reason._tag,
                message: VendorError.describe(e)
              }
            )
          })
        )
      )
    })

  const verify: Endpoint.Endpoint<Item, WeComError, never>["verify"] = (_pending, rows) =>
    Effect.forEach(rows, (v) => {
      const target = kind.newId(v.item)
      // Without a rename the update is idempotent: sending it again is safe.
      return target === undefined
        ? Effect.succeed<Endpoint.Verified>({ row: v.row, status: "resend" })
        : checkRename(v, target)
    })

  return { ...specOf(kind), execute, verify }
}

const specOf = <Item>(kind: Kind<Item>): Endpoint.Spec<Item> => ({
  name: kind.name,
  schema: kind.schema,
  idOf: (value) => {
    const id = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[kind.idField] : ""
    return typeof id === "string" ? id : ""
  },
  chunkSize: WeComSchema.BATCH_MAX,
  crossRow: crossRowChecks(kind)
})

/**
 * `batch_update_student` as a pure spec (row Schema, id, chunk size, cross-row checks): validating and planning
 * students, `--dry-run` included, needs no client.
 *
 * @since 0.2.0
 * @category endpoints
 */
export const studentsSpec: Endpoint.Spec<WeComSchema.StudentUpdate> = specOf(studentKind)

/**
 * `batch_update_parent` as a pure spec.
 *
 * @since 0.2.0
 * @category endpoints
 */
export const parentsSpec: Endpoint.Spec<WeComSchema.ParentUpdate> = specOf(parentKind)

// =============================================================================
// make
// =============================================================================

/**
 * Builds the service on a {@link WeComClient}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Service, never, WeComClient> = Effect.gen(function*() {
  const client = yield* WeComClient

  const getUser: Service["getUser"] = Effect.fn("SchoolContacts.getUser")(function*(userid: string) {
    const found = yield* client.get(PATHS.getUser, { userid }, WeComSchema.UserReply).pipe(
      Effect.map(Option.some),
      // 60111 (and 1111 in the batch examples) mean "no such user": an answer, not a failure.
      Effect.catchIf((e) => e.code === 60111 || e.code === 1111, () => Effect.succeedNone)
    )
    return Option.map(found, (reply): SchoolUser =>
      reply.user_type === 2
        ? { userType: "parent", userid: reply.parent?.parent_userid ?? userid }
        : { userType: "student", userid: reply.student?.student_userid ?? userid })
  })

  const students = makeEndpoint(client, studentKind, getUser)
  const parents = makeEndpoint(client, parentKind, getUser)

  return SchoolContacts.of({
    students,
    parents,
    batchUpdateStudents: (input, options) => BatchPipeline.run(students, input, options),
    batchUpdateParents: (input, options) => BatchPipeline.run(parents, input, options),
    getUser
  })
})

/**
 * The service, from a {@link WeComClient} in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SchoolContacts, never, WeComClient> = Layer.effect(SchoolContacts, make)
