/**
 * The writes a `DepartmentPlan` needs, as `@dirsync/core` endpoints for `BatchPipeline`: creating departments
 * (contact v2 `batch_add`, or contact v3 `POST departments` one by one), changing them (v3 `PATCH`: name, parent,
 * leader) and deleting them (v3 `DELETE`). Each is exactly-once on resume.
 *
 * **Details**
 *
 * - Creates take `Departments.spec`'s rows, so they are validated and ordered parents first as `batchAdd`'s are, and
 *   resumed the same way: an interrupted create is read back (by custom id, or by name under its parent) before
 *   anything is resent.
 * - `api: "v2"` (default) sends `batch_add` tasks, the fast path for many departments. When Feishu answers a
 *   `batch_add` with HTTP 404 (the path is no longer served: contact v2 is listed as deprecated, and how a retired v2
 *   will answer is **inferred**), the chunk and every later one go through v3 instead, and `onFallback` is told once.
 * - `api: "v3"` creates one department per call with a `client_token` derived from `clientTokenSeed` (one value per
 *   run: `feishu apply` gives the plan's digest and a random run id) and the row: a create resent within the run
 *   (after a dropped connection) carries the same token, and Feishu answers the first create's result instead of
 *   creating again. A resume reads back first what an earlier run may have created; a row it finds absent gets a
 *   token of the resume's own (an earlier token may answer for a department deleted since). A custom id Feishu already has (43007), or a name already
 *   taken under the parent by a row without an id (43022), is read back: the row's own name and parent mean an earlier
 *   attempt created it (applied); anything else is a conflict naming the difference.
 * - Updates and deletes are idempotent (setting values; deleting what may be gone), so the client resends them after
 *   a failure that may hide work, and a resume sends them again. A delete Feishu answers "not found" (40015) counts
 *   as applied: the department is gone, which is what the plan wanted.
 * - Updates and deletes run level by level (the plan's `level`: final depth for updates, children first for
 *   deletes), so a department is moved only under a parent already in its final place and deleted only once empty.
 * - Calls in flight per chunk: {@link Options.callsPerChunk}; the client's per-API rate limit (1,000/min and 50/s,
 *   `x-ogw-ratelimit-reset` honoured) bounds them all.
 *
 * @since 0.4.0
 */
import { BatchPipeline, type Endpoint, Limit, Outcome, type RunJournal, VendorError } from "@dirsync/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { createHash, randomUUID } from "node:crypto"
import * as Departments from "./Departments.ts"
import { FeishuClient } from "./FeishuClient.ts"
import * as FeishuErrcode from "./FeishuErrcode.ts"
import type { FeishuError } from "./FeishuError.ts"
import type { Department, DepartmentRow } from "./FeishuSchema.ts"
import { departmentPath, PATHS, V3_CODES } from "./internal/endpoints.ts"

// =============================================================================
// Service
// =============================================================================

/**
 * A create's options: which API, and what makes its client tokens.
 *
 * @since 0.4.0
 * @category models
 */
export interface CreateOptions {
  /** `v2` (`batch_add` tasks, falling back to v3 on HTTP 404) or `v3` (one call per department). Default `v2`. */
  readonly api?: "v2" | "v3" | undefined
  /**
   * What client tokens are derived from, with each row's number and content: one value per run (e.g. the plan's digest
   * and a random run id), so resends within the run are the same request, while a later run of the same plan (after
   * someone deleted what an earlier one created) is never answered from Feishu's memory of the earlier run.
   */
  readonly clientTokenSeed: string
  /** Told once when v2 answered that it is unavailable and creates continue on v3. */
  readonly onFallback?: ((message: string) => Effect.Effect<void>) | undefined
}

const Changed = Schema.Struct({
  name: Schema.optionalKey(Schema.String),
  parent_department_id: Schema.optionalKey(Schema.String),
  /** `""` for no leader. */
  leader_user_id: Schema.optionalKey(Schema.String)
})

/**
 * A department change, as `update` takes it: the department's id, its plan level, the new values only, and (`was`)
 * what the plan saw in those fields. With `was`, a resume reads the department before sending an update whose outcome
 * is unknown: all new values → applied; some still the old ones → sent again; anything else → `Conflict` (someone
 * changed it since, and a resend would undo their change). Without it the update is simply sent again.
 *
 * @since 0.4.0
 * @category schemas
 */
export const UpdateRow = Schema.Struct({
  id: Schema.String,
  level: Schema.Int,
  name: Schema.optionalKey(Schema.String),
  parent_department_id: Schema.optionalKey(Schema.String),
  leader_user_id: Schema.optionalKey(Schema.String),
  was: Schema.optionalKey(Changed)
})

/**
 * @since 0.4.0
 * @category models
 */
export type UpdateRow = typeof UpdateRow.Type

/**
 * A department to delete, and its plan level (children first).
 *
 * @since 0.4.0
 * @category schemas
 */
export const DeleteRow = Schema.Struct({ id: Schema.String, level: Schema.Int })

/**
 * @since 0.4.0
 * @category models
 */
export type DeleteRow = typeof DeleteRow.Type

/**
 * @since 0.4.0
 * @category models
 */
export interface Service {
  /** The create endpoint for one apply. */
  readonly create: (
    options: CreateOptions
  ) => Endpoint.Endpoint<Department, FeishuError | RunJournal.JournalError, never, DepartmentRow>
  /** Contact v3 `PATCH departments/:id`. */
  readonly update: Endpoint.Endpoint<UpdateRow, FeishuError, never, typeof UpdateRow.Encoded>
  /** Contact v3 `DELETE departments/:id`. */
  readonly delete: Endpoint.Endpoint<DeleteRow, FeishuError, never, typeof DeleteRow.Encoded>
}

/**
 * @since 0.4.0
 * @category services
 */
export class DepartmentWrites
  extends Context.Service<DepartmentWrites, Service>()("@dirsync/feishu/DepartmentWrites")
{}

// =============================================================================
// Options
// =============================================================================

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Contact v3 calls in flight at once within one chunk. Default 5. */
  readonly callsPerChunk?: number | undefined
  /** Rows per chunk of the v3 endpoints (and of v3 creates). Default 10. */
  readonly chunkSize?: number | undefined
}

// =============================================================================
// Specs
// =============================================================================

/**
 * Dense levels from the plan's: pass 2 runs levels 0, 1, 2, … and a plan's depths may skip some.
 */
const denseLevels = <A extends { readonly level: number }>(): Endpoint.CrossRowChecks<A> => {
  const seen: Array<{ readonly row: number; readonly level: number }> = []
  return {
    observe: ({ item, row }) => void seen.push({ row, level: item.level }),
    finish: () => {
      const rank = new Map([...new Set(seen.map((s) => s.level))].toSorted((a, b) => a - b).map((l, i) => [l, i]))
      return { rejected: new Map(), levels: new Map(seen.map((s) => [s.row, rank.get(s.level)!])) }
    }
  }
}

const idOf = (value: unknown): string =>
  Predicate.hasProperty(value, "id") && typeof value.id === "string" ? value.id : ""

/**
 * The update endpoint's pure half: validating and ordering needs no client.
 *
 * @since 0.4.0
 * @category endpoints
 */
export const updateSpec = (
  options: Pick<Options, "chunkSize"> = {}
): Endpoint.Spec<UpdateRow, typeof UpdateRow.Encoded> => ({
  name: "feishu.v3.department.patch",
  schema: UpdateRow,
  idOf,
  chunkSize: Math.max(1, options.chunkSize ?? 10),
  crossRow: denseLevels
})

/**
 * The delete endpoint's pure half.
 *
 * @since 0.4.0
 * @category endpoints
 */
export const deleteSpec = (
  options: Pick<Options, "chunkSize"> = {}
): Endpoint.Spec<DeleteRow, typeof DeleteRow.Encoded> => ({
  name: "feishu.v3.department.delete",
  schema: DeleteRow,
  idOf,
  chunkSize: Math.max(1, options.chunkSize ?? 10),
  crossRow: denseLevels
})

/**
 * The client token of one create: a UUID-shaped SHA-256 of the seed, the row number and the row's content, so the
 * same plan's same row always sends the same token and a different request never reuses one (Feishu answers 40021 to
 * a token reused with another request).
 *
 * @since 0.4.0
 * @category requests
 */
export const clientToken = (seed: string, row: number, d: Department): string => {
  const hex = createHash("sha256").update(
    JSON.stringify([seed, row, d.id ?? null, d.name, d.parent_id, d.leader_user_id ?? null, d.create_group_chat])
  ).digest("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

// =============================================================================
// make
// =============================================================================

const Created = Schema.Struct({
  department: Schema.Struct({
    name: Schema.optional(Schema.String),
    department_id: Schema.optional(Schema.String),
    open_department_id: Schema.optional(Schema.String),
    chat_id: Schema.optional(Schema.String)
  })
})

const Anything = Schema.Unknown

/** A department as a resume reads it to judge an update: the fields an update sets. */
const DepartmentNow = Schema.Struct({
  department: Schema.Struct({
    name: Schema.String,
    parent_department_id: Schema.optional(Schema.String),
    leader_user_id: Schema.optional(Schema.String)
  })
})

/**
 * v2's "this path is not served": a `batch_add` refused with HTTP 404 and no envelope (inferred; see the module).
 * Only a refusal counts: a row whose outcome is unknown also carries 404 when `batch_add` was accepted (a task id) and
 * polling `task/get` then met a 404, and that task may still create the row, so the row must not be resent on v3
 * (nor the run switched to v3 as if `batch_add` were gone); a resume with the journal checks it first.
 */
const v2Unavailable = (r: Endpoint.ItemResult) =>
  r.status === "failed" && r.code === 404 && r.reason !== Outcome.LocalReason.OutcomeUnknown

const failedWith = (row: number, e: FeishuError, what: string): Endpoint.ItemResult => {
  const unknown = VendorError.isOutcomeUnknown(e)
  return {
    row,
    status: "failed",
    ...(e.code === 0 ? {} : { code: e.code }),
    reason: unknown ? Outcome.LocalReason.OutcomeUnknown : e.reason._tag,
    message: unknown
      ? `${VendorError.describe(e)}; Feishu may or may not have ${what}: a resume with the journal checks first`
      : `${VendorError.describe(e)} — ${FeishuErrcode.explain(e.endpoint, e.code)}`
  }
}

/**
 * Builds the service on the {@link FeishuClient} and `Departments` in context.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const client = yield* FeishuClient
  const departments = yield* Departments.Departments
  const callsPerChunk = Math.max(1, options.callsPerChunk ?? 5)
  const chunkSize = Math.max(1, options.chunkSize ?? 10)
  const v2 = departments.endpoint

  /** What Feishu holds for one create row, through `Departments`' read-back (by custom id, or by name). */
  const readBack = (v: Endpoint.Valid<Department>) =>
    v2.verify!({ chunk: 0, rows: [], notes: [] }, [v]).pipe(Effect.map((verdicts) => verdicts[0]))

  const createOne =
    (seed: (row: number) => string) =>
    (v: Endpoint.Valid<Department>): Effect.Effect<Endpoint.ItemResult, FeishuError | RunJournal.JournalError> =>
      client.request({
        method: "POST",
        path: PATHS.departmentCreate,
        urlParams: {
          department_id_type: "department_id",
          user_id_type: "user_id",
          client_token: clientToken(seed(v.row), v.row, v.item)
        },
        body: {
          name: v.item.name,
          parent_department_id: v.item.parent_id,
          ...(v.item.id === undefined ? {} : { department_id: v.item.id }),
          ...(v.item.leader_user_id === undefined ? {} : { leader_user_id: v.item.leader_user_id }),
          ...(v.item.create_group_chat ? { create_group_chat: true } : {})
        },
        data: Created
      }).pipe(
        Effect.map(({ department }): Endpoint.ItemResult => {
          const result: Record<string, string> = {}
          const id = department.department_id ?? v.item.id
          if (id !== undefined) result["department_id"] = id
          if (department.chat_id !== undefined) result["chat_id"] = department.chat_id
          return { row: v.row, status: "applied", result }
        }),
        Effect.catch((e: FeishuError): Effect.Effect<Endpoint.ItemResult, FeishuError | RunJournal.JournalError> => {
          if (BatchPipeline.isFatal(e)) return Effect.fail(e)
          const exists = (e.code === V3_CODES.idTaken && v.item.id !== undefined) ||
            (e.code === V3_CODES.nameTaken && v.item.id === undefined)
          if (!exists) return Effect.succeed(failedWith(v.row, e, "created the department"))
          // Taken: by this row's earlier attempt (the same name and parent), or by another department.
          return readBack(v).pipe(
            Effect.map((verdict): Endpoint.ItemResult => {
              if (verdict !== undefined && verdict.status !== "resend") return verdict
              return failedWith(v.row, e, "created the department")
            }),
            Effect.catch((read) =>
              BatchPipeline.isFatal(read) ? Effect.fail(read) : Effect.succeed(failedWith(v.row, e, "created it"))
            )
          )
        })
      )

  const create: Service["create"] = (createOptions) => {
    let api = createOptions.api ?? "v2"
    // Rows this run's resume read back and found absent. Their plan token may already be spent: an earlier attempt
    // created the department and someone deleted it since; Feishu then answers a create under that token with the
    // first create's reply and creates nothing, and the row would be reported applied with no department. So they
    // are sent under a token of this run's own. Created twice they still are not: an earlier attempt still in flight
    // meets the department this one made (43007 by custom id, 43022 by name) and is refused, and a resend of ours
    // that meets 43007/43022 is read back as before.
    const readAbsent = new Set<number>()
    const runNonce = randomUUID()
    const seed = (row: number) =>
      readAbsent.has(row)
        ? `${createOptions.clientTokenSeed}\u0000read absent on resume\u0000${runNonce}`
        : createOptions.clientTokenSeed
    const viaV3 = (chunk: ReadonlyArray<Endpoint.Valid<Department>>) =>
      Effect.forEach(chunk, createOne(seed), { concurrency: callsPerChunk })
    const execute: Endpoint.Executor<Department, FeishuError | RunJournal.JournalError, never>["execute"] = (
      chunk,
      context
    ) =>
      api === "v3" ? viaV3(chunk) : v2.execute(chunk, context).pipe(
        Effect.flatMap((results) => {
          if (results.length === 0 || !results.every(v2Unavailable)) return Effect.succeed(results)
          if (api === "v2") {
            api = "v3"
            const message = "Feishu answered contact v2 department/batch_add with HTTP 404 (not served): creating " +
              "departments with contact v3, one call each, from now on"
            return (createOptions.onFallback?.(message) ?? Effect.void).pipe(Effect.andThen(viaV3(chunk)))
          }
          return viaV3(chunk)
        })
      )
    return {
      // The v2 endpoint's spec, which `Departments` built from the layer's `departments` options (`maxNameLength`,
      // `chunkSize`); a fresh `Departments.spec()` dropped them, so a configured name limit was never checked.
      ...v2,
      ...(api === "v3" ? { chunkSize } : {}),
      execute,
      ...(v2.verify === undefined ? {} : {
        verify: (pending, rows) =>
          v2.verify!(pending, rows).pipe(
            Effect.tap((verdicts) =>
              Effect.sync(() => {
                for (const verdict of verdicts) if (verdict.status === "resend") readAbsent.add(verdict.row)
              })
            )
          )
      }),
      warmUp: client.accessToken
    }
  }

  const patchOne = (v: Endpoint.Valid<UpdateRow>): Effect.Effect<Endpoint.ItemResult, FeishuError> => {
    const { id, level, was, ...body } = v.item
    void level
    void was
    return client.request({
      method: "PATCH",
      path: departmentPath(id),
      endpoint: PATHS.departmentPatch,
      urlParams: { department_id_type: "department_id", user_id_type: "user_id" },
      body,
      data: Anything
    }).pipe(
      Effect.as<Endpoint.ItemResult>({ row: v.row, status: "applied" }),
      Effect.catch((e: FeishuError) =>
        BatchPipeline.isFatal(e) ? Effect.fail(e) : Effect.succeed(failedWith(v.row, e, "changed the department"))
      )
    )
  }

  const deleteOne = (v: Endpoint.Valid<DeleteRow>): Effect.Effect<Endpoint.ItemResult, FeishuError> =>
    client.request({
      method: "DELETE",
      path: departmentPath(v.item.id),
      endpoint: PATHS.departmentDelete,
      urlParams: { department_id_type: "department_id" },
      data: Anything
    }).pipe(
      Effect.as<Endpoint.ItemResult>({ row: v.row, status: "applied" }),
      Effect.catch((e: FeishuError): Effect.Effect<Endpoint.ItemResult, FeishuError> => {
        if (BatchPipeline.isFatal(e)) return Effect.fail(e)
        // Gone already (an earlier attempt whose answer was lost, or someone else): what the plan wanted.
        if (e.code === V3_CODES.notFound) {
          return Effect.succeed({ row: v.row, status: "applied", message: "already gone from Feishu" })
        }
        return Effect.succeed(failedWith(v.row, e, "deleted the department"))
      })
    )

  /**
   * Resume: what became of an update whose answer was lost, judged by reading the department (see {@link UpdateRow}).
   * A read that fails (not fatally) gives no verdict: the row stays unverified rather than resent blindly.
   */
  const verifyUpdate = (v: Endpoint.Valid<UpdateRow>): Effect.Effect<ReadonlyArray<Endpoint.Verified>, FeishuError> => {
    const { id, level, was, ...target } = v.item
    void level
    if (was === undefined) return Effect.succeed([{ row: v.row, status: "resend" }])
    return client.request({
      method: "GET",
      path: departmentPath(id),
      endpoint: PATHS.departmentGet,
      urlParams: { department_id_type: "department_id", user_id_type: "user_id" },
      data: DepartmentNow
    }).pipe(
      Effect.map(({ department: d }): ReadonlyArray<Endpoint.Verified> => {
        const now: Record<keyof typeof target, string> = {
          name: d.name,
          parent_department_id: d.parent_department_id ?? "0",
          leader_user_id: d.leader_user_id ?? ""
        }
        // Parents are ids, compared case-insensitively as everywhere; names and leaders exactly.
        const same = (k: keyof typeof target, a: string, b: string) =>
          k === "parent_department_id" ? Limit.idKey(a) === Limit.idKey(b) : a === b
        const fields = (Object.keys(target) as Array<keyof typeof target>).filter((k) => target[k] !== undefined)
        const other = fields.filter((k) => !same(k, now[k], target[k]!) && !same(k, now[k], was[k] ?? ""))
        if (other.length > 0) {
          return [{
            row: v.row,
            status: "failed",
            reason: Outcome.LocalReason.Conflict,
            message: `not resent: Feishu now has ${
              other.map((k) => `${k} ${JSON.stringify(now[k])}`).join(" and ")
            }, neither what the plan saw nor what it sets: changed by someone else since; make a new plan`
          }]
        }
        return fields.every((k) => same(k, now[k], target[k]!))
          ? [{ row: v.row, status: "applied", message: "found applied: an earlier attempt's answer was lost" }]
          : [{ row: v.row, status: "resend" }]
      }),
      Effect.catch((e: FeishuError): Effect.Effect<ReadonlyArray<Endpoint.Verified>, FeishuError> => {
        if (BatchPipeline.isFatal(e) && e.reason._tag !== "PermissionDenied") return Effect.fail(e)
        if (e.code === V3_CODES.notFound) {
          return Effect.succeed([{
            row: v.row,
            status: "failed",
            reason: Outcome.LocalReason.Conflict,
            message: "not resent: the department is gone from Feishu since the plan; make a new plan"
          }])
        }
        return Effect.succeed([])
      })
    )
  }

  const update: Service["update"] = {
    ...updateSpec({ chunkSize }),
    execute: (chunk) => Effect.forEach(chunk, patchOne, { concurrency: callsPerChunk }),
    verify: (_pending, rows) =>
      Effect.forEach(rows, verifyUpdate, { concurrency: 4 }).pipe(Effect.map((lists) => lists.flat())),
    warmUp: client.accessToken
  }
  const remove: Service["delete"] = {
    ...deleteSpec({ chunkSize }),
    execute: (chunk) => Effect.forEach(chunk, deleteOne, { concurrency: callsPerChunk }),
    warmUp: client.accessToken
  }
  return DepartmentWrites.of({ create, update, delete: remove })
})

// =============================================================================
// Layers
// =============================================================================

/**
 * The service on the {@link FeishuClient} in context, with its own `Departments` for the v2 path.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options & { readonly departments?: Departments.Options | undefined } = {}
): Layer.Layer<DepartmentWrites, never, FeishuClient> =>
  Layer.effect(DepartmentWrites, make(options)).pipe(Layer.provide(Departments.layer(options.departments)))
