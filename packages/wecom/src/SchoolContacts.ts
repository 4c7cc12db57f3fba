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
 *   pipeline aborts the run when the reason is fatal: credentials, permissions, a token that stayed invalid). A
 *   `result_list` that names a row not sent, a row twice, or no userid proves nothing: the chunk's outcome is
 *   unknown, handled like a lost reply.
 * - Renames (`new_*_userid`) work once, so a chunk is never blindly resent after an ambiguous failure (no reply,
 *   HTTP 5xx, a timeout, -1, a reply that proves nothing): before the retry, each rename row of the chunk is checked
 *   with `school/user/get`; a rename that already happened is reported applied and left out of the resend. Rows
 *   without a rename are idempotent and are simply resent. A rename counts as applied only with proof of identity:
 *   the target's fields equal the row's, or, for a row with nothing but the ids, its old id existed before the send
 *   (checked before the first send and journaled as a note) and is gone now. "Old id gone, target exists" alone
 *   also holds when the old id never existed and the target is someone else; such a row is reported
 *   `OutcomeUnknown`, never applied. The same check serves `verify` when a journaled run resumes, row by row: a
 *   check that fails holds back only its own row.
 * - Rows whose outcome stays unknown when retries run out are `failed` with reason `OutcomeUnknown`.
 *
 * **Creates and deletes** (`batch_create_student`, `batch_delete_student`, `batch_create_parent`,
 * `batch_delete_parent`; chunks of at most 100, the same row checks and `result_list` decoding) are not idempotent on
 * WeCom's side: a second create of a userid fails "userid exists", a second delete fails "not found". Exactly once:
 *
 * - After an ambiguous failure (no reply, HTTP 5xx, a timeout, -1, a reply that proves nothing) and on resume
 *   (`verify`), every row of the chunk is checked with `school/user/get` before anything is resent. A create whose
 *   user now exists, of the right kind and with the row's data (student: name and classes as a set, mobile when WeCom
 *   shows one; parent: children and relations as a set, mobile when shown), is applied; a delete whose user is gone
 *   is applied. Any other row is resent, and WeCom's answer decides it.
 * - A create answered "userid exists" ({@link settlingCodes}`.userExists`) is checked the same way: the user exists
 *   with the row's data → applied (an earlier run, cut off before it journaled, created it); with other data, or as
 *   the other kind of user → failed with WeCom's code and a message naming what differs.
 * - A delete answered "not found" ({@link settlingCodes}`.userNotFound`) is applied: the goal state, no such user,
 *   holds.
 * - A student delete answered 65013 (the student still has parents) fails with a message saying to delete the
 *   parents first: WeCom refuses to delete a student with parents.
 *
 * @since 0.1.0
 */
import { BatchPipeline, type Endpoint, Limit, Outcome, RowIndex, type RunJournal, VendorError } from "@dirsync/core"
import type { PipelineError } from "@dirsync/core/PipelineError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import { PATHS } from "./internal/endpoints.ts"
import { WeComClient } from "./WeComClient.ts"
import type * as WeComClientModule from "./WeComClient.ts"
import * as WeComErrcode from "./WeComErrcode.ts"
import { WeComError } from "./WeComError.ts"
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
  /** The fields WeCom sent, for comparing a renamed user with the row that renamed it. */
  readonly name?: string | undefined
  readonly mobile?: string | undefined
  readonly department?: ReadonlyArray<number> | undefined
  readonly children?: ReadonlyArray<{ readonly student_userid: string; readonly relation: string }> | undefined
}

/**
 * One of the service's batch endpoints: items of `Item` decoded from rows typed `Row`, sent through the client.
 *
 * @since 0.3.0
 * @category models
 */
export type SchoolEndpoint<Item, Row> = Endpoint.Endpoint<Item, WeComError | RunJournal.JournalError, never, Row>

/**
 * A batch method of the service: rows typed from the row Schema's encoded side (`Endpoint.ExactRow`: a field the row
 * does not declare fails to compile) in, one outcome per input row out, in input order.
 *
 * @since 0.3.0
 * @category models
 */
export type BatchRun<Row> = <A extends Endpoint.SourceRow<Row>, EIn, RIn>(
  input: Stream.Stream<A & Endpoint.ExactRow<Row, A>, EIn, RIn>,
  options?: BatchPipeline.Options
) => Stream.Stream<Outcome.RowOutcome, WeComError | EIn | RunJournal.JournalError | PipelineError, RIn>

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The `batch_update_student` endpoint, for callers that run the pipeline themselves (the CLI). */
  readonly students: SchoolEndpoint<WeComSchema.StudentUpdate, WeComSchema.StudentRow>
  /** The `batch_update_parent` endpoint. */
  readonly parents: SchoolEndpoint<WeComSchema.ParentUpdate, WeComSchema.ParentRow>
  /**
   * Runs `batch_update_student` over the rows; one outcome per input row, in input order.
   *
   * Rows are typed: each value is a {@link WeComSchema.StudentRow}, and a field it does not declare (`nmae` for
   * `name`) fails to compile, however the stream was built (`Endpoint.ExactRow`). Rows whose type is `unknown`
   * (parsed JSON, a file) do not compile until typed: cast them (`as Stream.Stream<Endpoint.SourceRow<StudentRow>>`)
   * and they are checked at run time instead, as every row is: a value with a key the row Schema does not declare
   * is reported `rejected` (`InvalidField`, naming the key and the closest field) and never sent; the other rows of
   * its chunk go on.
   */
  readonly batchUpdateStudents: BatchRun<WeComSchema.StudentRow>
  /**
   * Runs `batch_update_parent` over the rows. Typed and checked as {@link Service.batchUpdateStudents}'s are, each
   * value a {@link WeComSchema.ParentRow} (the fields of each of its `children` too).
   */
  readonly batchUpdateParents: BatchRun<WeComSchema.ParentRow>
  /** `school/user/get`: the student or parent with this userid, or none (errcode 60111). */
  readonly getUser: (userid: string) => Effect.Effect<Option.Option<SchoolUser>, WeComError>
  /** The `batch_create_student` endpoint (since 0.3.0). */
  readonly createStudents: SchoolEndpoint<WeComSchema.StudentCreate, WeComSchema.StudentCreateRow>
  /** The `batch_delete_student` endpoint (since 0.3.0). */
  readonly deleteStudents: SchoolEndpoint<WeComSchema.StudentDelete, WeComSchema.StudentDeleteRow>
  /** The `batch_create_parent` endpoint (since 0.3.0). */
  readonly createParents: SchoolEndpoint<WeComSchema.ParentCreate, WeComSchema.ParentCreateRow>
  /** The `batch_delete_parent` endpoint (since 0.3.0). */
  readonly deleteParents: SchoolEndpoint<WeComSchema.ParentDelete, WeComSchema.ParentDeleteRow>
  /**
   * Runs `batch_create_student` over the rows (since 0.3.0); one outcome per input row, in input order. Typed and
   * checked as {@link Service.batchUpdateStudents}'s are, each value a {@link WeComSchema.StudentCreateRow}. Exactly
   * once across lost replies and resumes (see the module's notes).
   */
  readonly batchCreateStudents: BatchRun<WeComSchema.StudentCreateRow>
  /**
   * Runs `batch_delete_student` over the rows (since 0.3.0), each a {@link WeComSchema.StudentDeleteRow}. A student
   * who still has parents fails (65013): delete the parents first. A student already gone is applied.
   */
  readonly batchDeleteStudents: BatchRun<WeComSchema.StudentDeleteRow>
  /**
   * Runs `batch_create_parent` over the rows (since 0.3.0), each a {@link WeComSchema.ParentCreateRow} (mobile
   * required, 1–10 children). Create the children first: a child that is not a student fails the row.
   */
  readonly batchCreateParents: BatchRun<WeComSchema.ParentCreateRow>
  /** Runs `batch_delete_parent` over the rows (since 0.3.0), each a {@link WeComSchema.ParentDeleteRow}. */
  readonly batchDeleteParents: BatchRun<WeComSchema.ParentDeleteRow>
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
interface Kind<Item, Row> {
  readonly name: string
  readonly path: string
  readonly listKey: "students" | "parents"
  readonly idField: "student_userid" | "parent_userid"
  readonly newIdField: "new_student_userid" | "new_parent_userid"
  readonly userType: SchoolUser["userType"]
  readonly schema: Endpoint.Spec<Item, Row>["schema"]
  readonly id: (item: Item) => string
  readonly newId: (item: Item) => string | undefined
  /**
   * Whether `user` has the row's own fields: `true` all equal, `false` one differs, `undefined` nothing to compare
   * (the row carries no field WeCom sent back).
   */
  readonly sameFields: (item: Item, user: SchoolUser) => boolean | undefined
  /** Whether the row carries a field besides its ids, which {@link sameFields} can compare after a lost reply. */
  readonly hasFields: (item: Item) => boolean
}

/** Folds field comparisons: any `false` wins, then any `true`; all `undefined` (nothing compared) stays undefined. */
const allSame = (...checks: ReadonlyArray<boolean | undefined>): boolean | undefined =>
  checks.includes(false) ? false : checks.includes(true) ? true : undefined

const sameValue = <A>(wanted: A | undefined, found: A | undefined): boolean | undefined =>
  wanted === undefined || found === undefined ? undefined : wanted === found

const sameSet = (wanted: ReadonlyArray<string> | undefined, found: ReadonlyArray<string> | undefined) => {
  if (wanted === undefined || found === undefined) return undefined
  const a = new Set(wanted)
  const b = new Set(found)
  return a.size === b.size && [...a].every((x) => b.has(x))
}

const studentKind: Kind<WeComSchema.StudentUpdate, WeComSchema.StudentRow> = {
  name: "wecom.batch_update_student",
  path: PATHS.batchUpdateStudent,
  listKey: "students",
  idField: "student_userid",
  newIdField: "new_student_userid",
  userType: "student",
  schema: WeComSchema.StudentUpdate,
  id: (item) => item.student_userid,
  newId: (item) => item.new_student_userid,
  sameFields: (item, user) =>
    allSame(
      sameValue(item.name, user.name),
      sameValue(item.mobile, user.mobile),
      sameSet(item.department?.map(String), user.department?.map(String))
    ),
  hasFields: (item) => item.name !== undefined || item.mobile !== undefined || item.department !== undefined
}

const parentKind: Kind<WeComSchema.ParentUpdate, WeComSchema.ParentRow> = {
  name: "wecom.batch_update_parent",
  path: PATHS.batchUpdateParent,
  listKey: "parents",
  idField: "parent_userid",
  newIdField: "new_parent_userid",
  userType: "parent",
  schema: WeComSchema.ParentUpdate,
  id: (item) => item.parent_userid,
  newId: (item) => item.new_parent_userid,
  sameFields: (item, user) =>
    allSame(
      sameValue(item.mobile, user.mobile),
      // An empty list leaves a parent's children alone, so it says nothing about them.
      item.children === undefined || item.children.length === 0 ? undefined : sameSet(
        item.children.map((c) => `${Limit.idKey(c.student_userid)} ${c.relation}`),
        user.children?.map((c) => `${Limit.idKey(c.student_userid)} ${c.relation}`)
      )
    ),
  hasFields: (item) => item.mobile !== undefined || (item.children !== undefined && item.children.length > 0)
}

const rowList = (rows: ReadonlyArray<number>) => `${rows.length === 1 ? "row" : "rows"} ${rows.join(", ")}`

/**
 * Cross-row checks: keeps only lower-cased ids and row numbers, never whole rows.
 *
 * @since 0.1.0
 * @category checks
 */
export const crossRowChecks = <Item>(
  kind: Pick<Kind<Item, unknown>, "idField" | "newIdField" | "id" | "newId">
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
 * target) failed; every other row was applied. `undefined` when the list proves nothing about the rows sent: an
 * entry without this endpoint's userid, naming a row that was not sent, or naming a row twice. Then which rows
 * WeCom applied is unknown, and "the rest were applied" would be a guess.
 *
 * @since 0.1.0
 * @category decoding
 */
export const resultsOf = <Item>(
  kind: Pick<Kind<Item, unknown>, "idField" | "id" | "newId">,
  sent: ReadonlyArray<Endpoint.Valid<Item>>,
  reply: WeComSchema.BatchReply
): ReadonlyArray<Endpoint.ItemResult> | undefined => {
  const list = reply.result_list ?? []
  if (list.length === 0) return sent.map((v) => ({ row: v.row, status: "applied" }))
  const rowOf = new Map<string, number>()
  for (const v of sent) {
    rowOf.set(Limit.idKey(kind.id(v.item)), v.row)
    const newId = kind.newId(v.item)
    if (newId !== undefined) rowOf.set(Limit.idKey(newId), v.row)
  }
  const failures = new Map<number, WeComSchema.ItemFailure>()
  for (const f of list) {
    const id = f[kind.idField]
    const row = id === undefined ? undefined : rowOf.get(Limit.idKey(id))
    if (row === undefined || failures.has(row)) return undefined
    failures.set(row, f)
  }
  return sent.map((v) => {
    const f = failures.get(v.row)
    return f === undefined ? { row: v.row, status: "applied" } : itemFailure(v.row, f)
  })
}

/** The reason and message of a row whose outcome `e` leaves unknown (the request may have been applied). */
const unknownOutcome = (row: number, e: WeComError): Endpoint.ItemResult => ({
  row,
  status: "failed",
  code: e.code === 0 ? undefined : e.code,
  reason: Outcome.LocalReason.OutcomeUnknown,
  message: `${VendorError.describe(e)}; WeCom may or may not have applied this row`
})

/** What a rename check knows from before the send: whether the old id existed (as the right kind of user). */
interface RenameNote {
  readonly renameSources?: ReadonlyArray<string> | undefined
  readonly renameMissing?: ReadonlyArray<string> | undefined
}

const strings = (u: unknown): ReadonlyArray<string> =>
  Array.isArray(u) ? u.filter((x): x is string => typeof x === "string") : []

/** Old id (lower-cased) → whether it existed before the send, from a chunk's journal notes. */
const existedBefore = (notes: ReadonlyArray<Readonly<Record<string, unknown>>>): Map<string, boolean> => {
  const known = new Map<string, boolean>()
  for (const note of notes as ReadonlyArray<RenameNote>) {
    for (const id of strings(note.renameSources)) known.set(Limit.idKey(id), true)
    for (const id of strings(note.renameMissing)) known.set(Limit.idKey(id), false)
  }
  return known
}

const makeEndpoint = <Item, Row>(
  client: WeComClientModule.Service,
  kind: Kind<Item, Row>,
  getUser: Service["getUser"]
): SchoolEndpoint<Item, Row> => {
  /**
   * Checks one rename row after a send whose outcome is unknown. `existed`: whether its old id existed before that
   * send, when known. Applied only with proof of identity (the old id existed and is gone, or the target's fields
   * equal the row's); `resend` when the rename demonstrably did not happen (the old id is still there, the target
   * is not, or the old id never existed: WeCom then answers for the row itself); otherwise outcome unknown.
   */
  const checkRename = (v: Endpoint.Valid<Item>, target: string, existed: boolean | undefined) =>
    Effect.all([getUser(kind.id(v.item)), getUser(target)]).pipe(
      Effect.map(([before, after]): Endpoint.Verified => {
        const old = JSON.stringify(kind.id(v.item))
        const renamed = `school/user/get shows ${old} is gone and ${JSON.stringify(target)} exists`
        if (Option.isSome(before) || Option.isNone(after) || after.value.userType !== kind.userType) {
          return { row: v.row, status: "resend" }
        }
        if (existed === false) return { row: v.row, status: "resend" }
        const same = kind.sameFields(v.item, after.value)
        if (existed === true || same === true) {
          return {
            row: v.row,
            status: "applied",
            reason: Outcome.LocalReason.RenameVerified,
            message: `the reply was lost, but ${renamed}${
              existed === true ? `, and ${old} existed before the send` : " with this row's fields"
            }`
          }
        }
        if (same === false) return { row: v.row, status: "resend" }
        return {
          row: v.row,
          status: "failed",
          reason: Outcome.LocalReason.OutcomeUnknown,
          message: `the reply was lost and ${renamed}, but nothing shows ${old} existed or that ${
            JSON.stringify(target)
          } is this row (no field to compare): check it in the WeCom admin console before sending it again`
        }
      })
    )

  /**
   * Whether the old id of each rename row with nothing else to compare exists now, before the send: what proves such
   * a rename's identity after a lost reply. A row with fields is identified by them instead, at no extra call.
   */
  const sourcesOf = (chunk: ReadonlyArray<Endpoint.Valid<Item>>) =>
    Effect.forEach(chunk, (v) => {
      if (kind.newId(v.item) === undefined || kind.hasFields(v.item)) return Effect.succeed([])
      const id = kind.id(v.item)
      return getUser(id).pipe(
        Effect.map((found) => [[id, Option.isSome(found) && found.value.userType === kind.userType] as const]),
        // Unknown is allowed: the check after a lost reply then falls back to comparing fields.
        Effect.catch((e) => (BatchPipeline.isFatal(e) ? Effect.fail(e) : Effect.succeed([])))
      )
      // The client's per-corp cap bounds how many run at once.
    }, { concurrency: "unbounded" }).pipe(Effect.map((pairs) => new Map(pairs.flat())))

  const execute: SchoolEndpoint<Item, unknown>["execute"] = (
    chunk,
    context
  ) =>
    Effect.gen(function*() {
      const sources = yield* sourcesOf(chunk)
      if (sources.size > 0) {
        const note: RenameNote = {
          renameSources: [...sources].filter(([, existed]) => existed).map(([id]) => id),
          renameMissing: [...sources].filter(([, existed]) => !existed).map(([id]) => id)
        }
        yield* context.note(note as Record<string, unknown>)
      }
      const existed = (v: Endpoint.Valid<Item>) => sources.get(kind.id(v.item))
      const settled = new Map<number, Endpoint.ItemResult>()
      let remaining = chunk
      let ambiguous = false
      // One attempt: after a failure that may hide work (`outcomeUnknown`), first settle the rename rows the lost
      // request may have applied; then send what is left. The client sends it once (`retry: false`): this one retry
      // loop, under the client's policy, counts every attempt of the chunk, whatever failed.
      const attempt = Effect.gen(function*() {
        if (ambiguous) {
          for (const v of remaining) {
            const target = kind.newId(v.item)
            if (target === undefined) continue
            const verdict = yield* checkRename(v, target, existed(v))
            if (verdict.status !== "resend") settled.set(v.row, verdict)
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
        const results = resultsOf(kind, sent, reply)
        if (results === undefined) {
          // `ambiguous` stays set: the next attempt checks the renames before resending.
          return yield* new WeComError({
            endpoint: kind.path,
            code: reply.errcode ?? 0,
            vendorMessage: "the reply's result_list names a row that was not sent, a row twice, or no userid",
            reason: new VendorError.Transient({ kind: "reply" }),
            outcomeUnknown: true
          })
        }
        ambiguous = false
        for (const result of results) settled.set(result.row, result)
        remaining = []
      })
      const settleRenames = Effect.gen(function*() {
        for (const v of remaining) {
          const target = kind.newId(v.item)
          if (target === undefined) continue
          const verdict = yield* checkRename(v, target, existed(v)).pipe(
            Effect.orElseSucceed((): Endpoint.Verified => ({ row: v.row, status: "resend" }))
          )
          if (verdict.status !== "resend") settled.set(v.row, verdict)
        }
      })
      return yield* client.retry(attempt).pipe(
        Effect.map(() => chunk.map((v) => settled.get(v.row)!)),
        // Retries ran out. Renames already confirmed (and, if the last reply was lost, renames confirmed now) did
        // apply: report them applied, not failed, or a re-run would try to rename an id that no longer exists. A row
        // whose last send may have been applied is `OutcomeUnknown`, not a plain failure.
        Effect.catch((e) =>
          Effect.gen(function*() {
            if (BatchPipeline.isFatal(e)) return yield* e
            if (ambiguous) yield* settleRenames
            if (settled.size === 0 && e.outcomeUnknown !== true) return yield* e
            return chunk.map((v): Endpoint.ItemResult =>
              settled.get(v.row) ?? (e.outcomeUnknown === true ? unknownOutcome(v.row, e) : {
                row: v.row,
                status: "failed",
                code: e.code === 0 ? undefined : e.code,
                reason: e.reason._tag,
                message: VendorError.describe(e)
              })
            )
          })
        )
      )
    })

  const verify: SchoolEndpoint<Item, unknown>["verify"] = (pending, rows) => {
    const known = existedBefore(pending.notes)
    // Row by row: a check that fails leaves only its own row without a verdict (held back, never resent blindly).
    return Effect.forEach(rows, (v) => {
      const target = kind.newId(v.item)
      // Without a rename the update is idempotent: sending it again is safe.
      if (target === undefined) return Effect.succeed([{ row: v.row, status: "resend" } as const])
      return checkRename(v, target, known.get(Limit.idKey(kind.id(v.item)))).pipe(
        Effect.map((verdict) => [verdict]),
        Effect.catch((e) => (BatchPipeline.isFatal(e) ? Effect.fail(e) : Effect.succeed([])))
      )
    }).pipe(Effect.map((verdicts): ReadonlyArray<Endpoint.Verified> => verdicts.flat()))
  }

  // The token the first chunk needs, fetched while pass 1 reads the input (gettoken is a read).
  return { ...specOf(kind), execute, verify, warmUp: client.accessToken }
}

const specOf = <Item, Row>(kind: Kind<Item, Row>): Endpoint.Spec<Item, Row> => ({
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
export const studentsSpec: Endpoint.Spec<WeComSchema.StudentUpdate, WeComSchema.StudentRow> = specOf(studentKind)

/**
 * `batch_update_parent` as a pure spec.
 *
 * @since 0.2.0
 * @category endpoints
 */
export const parentsSpec: Endpoint.Spec<WeComSchema.ParentUpdate, WeComSchema.ParentRow> = specOf(parentKind)

// =============================================================================
// Creates and deletes
// =============================================================================

/**
 * The item codes that settle a create or a delete by themselves. WeCom documents neither for these endpoints, so the
 * table is ours: change it here, not in the logic, when WeCom is seen answering otherwise.
 *
 * - `userExists`: a create of a userid WeCom already holds. Inferred: 60102 ("UserID already exists", the global
 *   table), which the same directory answers to a rename onto a taken id.
 * - `userNotFound`: a delete of a userid WeCom does not hold. 1111 is the batch delete examples' own code (docs
 *   92040, 92080); 60111 ("UserID does not exist") and 46004 ("user does not exist") are inferred.
 *
 * @since 0.3.0
 * @category constants
 */
export const settlingCodes: {
  readonly userExists: ReadonlyArray<number>
  readonly userNotFound: ReadonlyArray<number>
} = {
  userExists: [60102],
  userNotFound: [1111, 60111, 46004]
}

/** What differs between the four create and delete endpoints. */
interface WriteKind<Item, Row> {
  readonly name: string
  readonly path: string
  readonly verb: "create" | "delete"
  readonly idField: "student_userid" | "parent_userid"
  readonly userType: SchoolUser["userType"]
  readonly schema: Endpoint.Spec<Item, Row>["schema"]
  readonly id: (item: Item) => string
  /** The request body for these rows. */
  readonly body: (items: ReadonlyArray<Item>) => Record<string, unknown>
  /** Creates: what differs between the row and the user WeCom holds (empty: the user has the row's data). */
  readonly differences: (item: Item, user: SchoolUser) => ReadonlyArray<string>
  /** Words added to an item failure's message, by code: what the user should do about it. */
  readonly hints: ReadonlyMap<number, string>
}

const noRename = () => undefined

/** `field: "here" in the row, "there" in WeCom`, for a value the row sets and WeCom shows otherwise. */
const differs = (field: string, wanted: string, found: string | undefined): ReadonlyArray<string> =>
  found === wanted
    ? []
    : [`${field} ${JSON.stringify(wanted)} here, ${found === undefined ? "not shown" : JSON.stringify(found)} in WeCom`]

const setKey = (values: ReadonlyArray<string>) => [...new Set(values)].toSorted().join(", ")

// A mobile WeCom does not show (hidden from third-party apps, vendor-wecom.md §9) proves nothing either way: only a
// mobile shown and different counts as a difference.
const mobileDiffers = (wanted: string | undefined, found: string | undefined): ReadonlyArray<string> =>
  wanted === undefined || found === undefined || wanted === found
    ? []
    : [`mobile ${JSON.stringify(wanted)} here, ${JSON.stringify(found)} in WeCom`]

const studentCreateKind: WriteKind<WeComSchema.StudentCreate, WeComSchema.StudentCreateRow> = {
  name: "wecom.batch_create_student",
  path: PATHS.batchCreateStudent,
  verb: "create",
  idField: "student_userid",
  userType: "student",
  schema: WeComSchema.StudentCreate,
  id: (item) => item.student_userid,
  body: (items) => ({ students: items }),
  differences: (item, user) => [
    ...differs("name", item.name, user.name),
    ...differs(
      "classes",
      setKey(item.department.map(String)),
      user.department === undefined ? undefined : setKey(user.department.map(String))
    ),
    ...mobileDiffers(item.mobile, user.mobile)
  ],
  hints: new Map()
}

const childrenKey = (children: ReadonlyArray<{ readonly student_userid: string; readonly relation: string }>) =>
  setKey(children.map((c) => `${Limit.idKey(c.student_userid)} ${c.relation}`))

const parentCreateKind: WriteKind<WeComSchema.ParentCreate, WeComSchema.ParentCreateRow> = {
  name: "wecom.batch_create_parent",
  path: PATHS.batchCreateParent,
  verb: "create",
  idField: "parent_userid",
  userType: "parent",
  schema: WeComSchema.ParentCreate,
  id: (item) => item.parent_userid,
  body: (items) => ({ parents: items }),
  differences: (item, user) => [
    ...differs(
      "children",
      childrenKey(item.children),
      user.children === undefined ? undefined : childrenKey(user.children)
    ),
    ...mobileDiffers(item.mobile, user.mobile)
  ],
  hints: new Map()
}

const studentDeleteKind: WriteKind<WeComSchema.StudentDelete, WeComSchema.StudentDeleteRow> = {
  name: "wecom.batch_delete_student",
  path: PATHS.batchDeleteStudent,
  verb: "delete",
  idField: "student_userid",
  userType: "student",
  schema: WeComSchema.StudentDelete,
  id: (item) => item.student_userid,
  body: (items) => ({ useridlist: items.map((i) => i.student_userid) }),
  differences: () => [],
  hints: new Map([[
    65013,
    "WeCom does not delete a student who still has parents: delete the parents first (batch_delete_parent), or " +
    "take the student out of their children (batch_update_parent), then delete the student"
  ]])
}

const parentDeleteKind: WriteKind<WeComSchema.ParentDelete, WeComSchema.ParentDeleteRow> = {
  name: "wecom.batch_delete_parent",
  path: PATHS.batchDeleteParent,
  verb: "delete",
  idField: "parent_userid",
  userType: "parent",
  schema: WeComSchema.ParentDelete,
  id: (item) => item.parent_userid,
  body: (items) => ({ useridlist: items.map((i) => i.parent_userid) }),
  differences: () => [],
  hints: new Map()
}

const makeWriteEndpoint = <Item, Row>(
  client: WeComClientModule.Service,
  kind: WriteKind<Item, Row>,
  getUser: Service["getUser"]
): SchoolEndpoint<Item, Row> => {
  const keyed = { idField: kind.idField, id: kind.id, newId: noRename }
  const quoted = (v: Endpoint.Valid<Item>) => JSON.stringify(kind.id(v.item))

  /**
   * What `school/user/get` shows about a row whose send may or may not have applied: applied when the goal state
   * holds (created: the user exists, of this kind, with the row's data; deleted: no such user of this kind), else
   * `resend`, and WeCom's answer to the resend decides.
   */
  const check = (v: Endpoint.Valid<Item>) =>
    getUser(kind.id(v.item)).pipe(Effect.map((found): Endpoint.Verified => {
      const user = Option.filter(found, (u) => u.userType === kind.userType)
      if (kind.verb === "delete") {
        return Option.isSome(user) ? { row: v.row, status: "resend" } : {
          row: v.row,
          status: "applied",
          message: `the reply was lost or proved nothing, but school/user/get shows ${quoted(v)} is gone`
        }
      }
      return Option.isSome(user) && kind.differences(v.item, user.value).length === 0
        ? {
          row: v.row,
          status: "applied",
          message: `the reply was lost or proved nothing, but school/user/get shows ${quoted(v)} exists with this ` +
            "row's data"
        }
        : { row: v.row, status: "resend" }
    }))

  /** Holds the non-fatal failure of a check as "no verdict": the caller then resends or reports the row unknown. */
  const checkOrResend = (v: Endpoint.Valid<Item>) =>
    check(v).pipe(
      Effect.catch((e) =>
        BatchPipeline.isFatal(e) ? Effect.fail(e) : Effect.succeed<Endpoint.Verified>({ row: v.row, status: "resend" })
      )
    )

  /**
   * An item result as the settling rules read it: "exists" on a create (checked: applied when the user has the
   * row's data) and "not found" on a delete (applied) settle the row; a hint joins the message of a known failure.
   */
  const settle = (v: Endpoint.Valid<Item>, result: Endpoint.ItemResult) =>
    Effect.gen(function*() {
      if (result.status !== "failed" || result.code === undefined) return result
      const code = result.code
      if (kind.verb === "delete" && settlingCodes.userNotFound.includes(code)) {
        return {
          row: v.row,
          status: "applied",
          message: `WeCom answered ${code} (not found): ${quoted(v)} is already gone, as the row asks`
        } satisfies Endpoint.ItemResult
      }
      if (kind.verb === "create" && settlingCodes.userExists.includes(code)) {
        const found = yield* getUser(kind.id(v.item)).pipe(
          Effect.map(Option.some),
          Effect.catch((e) => (BatchPipeline.isFatal(e) ? Effect.fail(e) : Effect.succeedNone))
        )
        if (Option.isNone(found)) {
          return { ...result, message: `${result.message}; school/user/get could not check ${quoted(v)}: run again` }
        }
        const user = found.value
        if (Option.isSome(user) && user.value.userType === kind.userType) {
          const diff = kind.differences(v.item, user.value)
          if (diff.length === 0) {
            return {
              row: v.row,
              status: "applied",
              message: `WeCom answered ${code} (userid exists), and school/user/get shows ${quoted(v)} with this ` +
                "row's data: created earlier (a run cut off before it recorded the outcome)"
            } satisfies Endpoint.ItemResult
          }
          return {
            ...result,
            message: `${result.message}; ${quoted(v)} already exists as a ${kind.userType} with other data (${
              diff.join("; ")
            }): update it instead of creating it, or choose another userid`
          }
        }
        if (Option.isSome(user)) {
          return {
            ...result,
            message: `${result.message}; ${quoted(v)} is already a ${user.value.userType}'s userid: choose another`
          }
        }
        return result
      }
      const hint = kind.hints.get(code)
      return hint === undefined ? result : { ...result, message: `${result.message}; ${hint}` }
    })

  const execute: SchoolEndpoint<Item, unknown>["execute"] = (chunk) =>
    Effect.gen(function*() {
      const rowOf = new Map(chunk.map((v) => [v.row, v]))
      const settled = new Map<number, Endpoint.ItemResult>()
      let remaining = chunk
      let ambiguous = false
      const verdicts = (rows: ReadonlyArray<Endpoint.Valid<Item>>, each: typeof check) =>
        // The client's per-corp cap bounds how many checks run at once.
        Effect.forEach(rows, each, { concurrency: "unbounded" }).pipe(Effect.map((all) => {
          for (const verdict of all) if (verdict.status !== "resend") settled.set(verdict.row, verdict)
          remaining = remaining.filter((v) => !settled.has(v.row))
        }))
      // One attempt, as for updates: after a failure that may hide work (`outcomeUnknown`), first settle every row
      // the lost request may have applied, with `school/user/get`; then send what is left, once. This one retry loop,
      // under the client's policy, counts every attempt of the chunk.
      const attempt = Effect.gen(function*() {
        if (ambiguous) {
          yield* verdicts(remaining, check)
          ambiguous = false
        }
        if (remaining.length === 0) return
        const sent = remaining
        ambiguous = true
        const reply = yield* client.post(
          kind.path,
          kind.body(sent.map((v) => v.item)),
          WeComSchema.BatchReply,
          { idempotent: false, retry: false, partialFailures: true }
        ).pipe(Effect.tapError((e) => Effect.sync(() => void (ambiguous = e.outcomeUnknown === true))))
        const results = resultsOf(keyed, sent, reply)
        if (results === undefined) {
          // `ambiguous` stays set: the next attempt checks every row before resending.
          return yield* new WeComError({
            endpoint: kind.path,
            code: reply.errcode ?? 0,
            vendorMessage: "the reply's result_list names a row that was not sent, a row twice, or no userid",
            reason: new VendorError.Transient({ kind: "reply" }),
            outcomeUnknown: true
          })
        }
        ambiguous = false
        remaining = []
        const final = yield* Effect.forEach(results, (r) => settle(rowOf.get(r.row)!, r), { concurrency: "unbounded" })
        for (const r of final) settled.set(r.row, r)
      })
      return yield* client.retry(attempt).pipe(
        Effect.map(() => chunk.map((v) => settled.get(v.row)!)),
        // Retries ran out. Rows whose goal state a check confirmed are applied, not failed: a re-run would otherwise
        // create them again (answered "exists") or delete them again (answered "not found"). A row whose last send
        // may have been applied is `OutcomeUnknown`, which a resume verifies before resending.
        Effect.catch((e) =>
          Effect.gen(function*() {
            if (BatchPipeline.isFatal(e)) return yield* e
            // The last failure may be a check's (a school/user/get refused), not the send's: the chunk's earlier,
            // ambiguous send still leaves its unsettled rows unknown.
            const unknown = ambiguous || e.outcomeUnknown === true
            if (ambiguous) yield* verdicts(remaining, checkOrResend)
            if (settled.size === 0 && !unknown) return yield* e
            return chunk.map((v): Endpoint.ItemResult =>
              settled.get(v.row) ?? (unknown ? unknownOutcome(v.row, e) : {
                row: v.row,
                status: "failed",
                code: e.code === 0 ? undefined : e.code,
                reason: e.reason._tag,
                message: VendorError.describe(e)
              })
            )
          })
        )
      )
    })

  // On resume, row by row: a check that fails holds back only its own row (no verdict: `Unverified`).
  const verify: SchoolEndpoint<Item, unknown>["verify"] = (_pending, rows) =>
    Effect.forEach(rows, (v) =>
      check(v).pipe(
        Effect.map((verdict) => [verdict]),
        Effect.catch((e) => (BatchPipeline.isFatal(e) ? Effect.fail(e) : Effect.succeed([])))
      )).pipe(Effect.map((all): ReadonlyArray<Endpoint.Verified> => all.flat()))

  return { ...writeSpecOf(kind), execute, verify, warmUp: client.accessToken }
}

const writeSpecOf = <Item, Row>(kind: WriteKind<Item, Row>): Endpoint.Spec<Item, Row> => ({
  name: kind.name,
  schema: kind.schema,
  idOf: (value) => {
    const id = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[kind.idField] : ""
    return typeof id === "string" ? id : ""
  },
  chunkSize: WeComSchema.BATCH_MAX,
  // Ids that differ only in case are one user: every copy is rejected. No row renames, so `newIdField` never shows.
  crossRow: crossRowChecks({
    idField: kind.idField,
    newIdField: kind.idField === "student_userid" ? "new_student_userid" : "new_parent_userid",
    id: kind.id,
    newId: noRename
  })
})

/**
 * `batch_create_student` as a pure spec: validating and planning new students, `--dry-run` included, needs no
 * client.
 *
 * @since 0.3.0
 * @category endpoints
 */
export const createStudentsSpec: Endpoint.Spec<WeComSchema.StudentCreate, WeComSchema.StudentCreateRow> = writeSpecOf(
  studentCreateKind
)

/**
 * `batch_delete_student` as a pure spec.
 *
 * @since 0.3.0
 * @category endpoints
 */
export const deleteStudentsSpec: Endpoint.Spec<WeComSchema.StudentDelete, WeComSchema.StudentDeleteRow> = writeSpecOf(
  studentDeleteKind
)

/**
 * `batch_create_parent` as a pure spec.
 *
 * @since 0.3.0
 * @category endpoints
 */
export const createParentsSpec: Endpoint.Spec<WeComSchema.ParentCreate, WeComSchema.ParentCreateRow> = writeSpecOf(
  parentCreateKind
)

/**
 * `batch_delete_parent` as a pure spec.
 *
 * @since 0.3.0
 * @category endpoints
 */
export const deleteParentsSpec: Endpoint.Spec<WeComSchema.ParentDelete, WeComSchema.ParentDeleteRow> = writeSpecOf(
  parentDeleteKind
)

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
        ? {
          userType: "parent",
          userid: reply.parent?.parent_userid ?? userid,
          mobile: reply.parent?.mobile,
          children: reply.parent?.children
        }
        : {
          userType: "student",
          userid: reply.student?.student_userid ?? userid,
          name: reply.student?.name,
          mobile: reply.student?.mobile,
          department: reply.student?.department
        })
  })

  const students = makeEndpoint(client, studentKind, getUser)
  const parents = makeEndpoint(client, parentKind, getUser)
  const createStudents = makeWriteEndpoint(client, studentCreateKind, getUser)
  const deleteStudents = makeWriteEndpoint(client, studentDeleteKind, getUser)
  const createParents = makeWriteEndpoint(client, parentCreateKind, getUser)
  const deleteParents = makeWriteEndpoint(client, parentDeleteKind, getUser)

  return SchoolContacts.of({
    students,
    parents,
    batchUpdateStudents: (input, options) => BatchPipeline.run(students, input, options),
    batchUpdateParents: (input, options) => BatchPipeline.run(parents, input, options),
    getUser,
    createStudents,
    deleteStudents,
    createParents,
    deleteParents,
    batchCreateStudents: (input, options) => BatchPipeline.run(createStudents, input, options),
    batchDeleteStudents: (input, options) => BatchPipeline.run(deleteStudents, input, options),
    batchCreateParents: (input, options) => BatchPipeline.run(createParents, input, options),
    batchDeleteParents: (input, options) => BatchPipeline.run(deleteParents, input, options)
  })
})

/**
 * The service, from a {@link WeComClient} in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SchoolContacts, never, WeComClient> = Layer.effect(SchoolContacts, make)
