/**
 * Every Feishu schema of this package: the department rows `department/batch_add` takes (with their documented and
 * our own limits), the request item, and the `data` of `batch_add` and `task/get`.
 *
 * **Details**
 *
 * - {@link Row}: `id` optional, 1–64 characters of digits, letters and `_ - @ .`, starting with a digit or letter,
 *   never `"0"` (the root's id); `name` required; `parent_id` required (`"0"` = top level); `leader_user_id` wins
 *   over `leader_open_id` (Feishu ignores the latter when both are sent, so we drop it and say so in the outcome);
 *   `create_group_chat` defaults to false. Cells that reach the schema as text are understood as the CLI reads
 *   them: every string is trimmed, an empty one reads as "not given", `true`/`false`/`1`/`0` (any case) as yes/no.
 *   Every text field must be well-formed Unicode (no lone surrogate): Feishu refuses the whole batch for one.
 * - `task_info` codes arrive as numbers in the docs and as strings in one community client: both are accepted.
 *
 * @since 0.2.0
 */
import { Limit, Text } from "@dirsync/core"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"

// =============================================================================
// Requests and responses
// =============================================================================

/**
 * One department as `department/batch_add` takes it.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DepartmentSpec = Schema.Struct({
  id: Schema.optional(Schema.String),
  name: Schema.String,
  parent_id: Schema.String,
  leader_user_id: Schema.optional(Schema.String),
  leader_open_id: Schema.optional(Schema.String),
  create_group_chat: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.2.0
 * @category schemas
 */
export type DepartmentSpec = typeof DepartmentSpec.Type

// The doc example shows numeric codes; one community client types them as strings, so accept both.
const Code = Schema.Union([Schema.Number, Schema.NumberFromString])

/**
 * One entry of `task_info`: the result of one submitted item. `action` (1 add, 2 update) is absent when it failed.
 *
 * @since 0.2.0
 * @category schemas
 */
export const TaskItem = Schema.Struct({
  code: Code,
  msg: Schema.optional(Schema.String),
  action: Schema.optional(Schema.Number),
  name: Schema.optional(Schema.String),
  department_id: Schema.optional(Schema.String),
  parent_id: Schema.optional(Schema.String),
  chat_id: Schema.optional(Schema.String)
})

/**
 * @since 0.2.0
 * @category schemas
 */
export type TaskItem = typeof TaskItem.Type

/**
 * `task/get`'s `data`. `finish_time` and `task_info` are absent until the task finished normally.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Task = Schema.Struct({
  task_id: Schema.String,
  type: Schema.optional(Schema.String),
  status: Schema.Number,
  progress: Schema.optional(Schema.Number),
  total_num: Schema.optional(Schema.Number),
  success_num: Schema.optional(Schema.Number),
  fail_num: Schema.optional(Schema.Number),
  create_time: Schema.optional(Schema.Number),
  finish_time: Schema.optional(Schema.Number),
  task_info: Schema.optional(Schema.Array(TaskItem))
})

/**
 * @since 0.2.0
 * @category schemas
 */
export type Task = typeof Task.Type

/**
 * @since 0.2.0
 * @category schemas
 */
export const Submitted = Schema.Struct({ task_id: Schema.String })

/**
 * Contact v3's `data` for one department read by its custom id (`department_id_type=department_id`): the fields a
 * lost `batch_add` is reconciled by.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DepartmentInfo = Schema.Struct({
  department: Schema.Struct({
    name: Schema.String,
    parent_department_id: Schema.optional(Schema.String),
    department_id: Schema.optional(Schema.String),
    open_department_id: Schema.optional(Schema.String),
    chat_id: Schema.optional(Schema.String),
    status: Schema.optional(Schema.Struct({ is_deleted: Schema.optional(Schema.Boolean) }))
  })
})

/**
 * @since 0.2.0
 * @category schemas
 */
export type DepartmentInfo = typeof DepartmentInfo.Type

/**
 * Contact v3's `data` for one page of a department's children (`department_id_type=department_id`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const DepartmentChildren = Schema.Struct({
  has_more: Schema.optional(Schema.Boolean),
  page_token: Schema.optional(Schema.String),
  items: Schema.optional(Schema.Array(Schema.Struct({
    name: Schema.String,
    department_id: Schema.optional(Schema.String),
    parent_department_id: Schema.optional(Schema.String),
    chat_id: Schema.optional(Schema.String),
    status: Schema.optional(Schema.Struct({ is_deleted: Schema.optional(Schema.Boolean) }))
  })))
})

/**
 * @since 0.2.0
 * @category schemas
 */
export type DepartmentChildren = typeof DepartmentChildren.Type

// =============================================================================
// Rows
// =============================================================================

/**
 * The id of Feishu's root department: a `parent_id` of `"0"` makes a top-level department. It is never a
 * department's own id in the input, and never refers to a row of the input.
 *
 * @since 0.2.0
 * @category constants
 */
export const ROOT_ID = "0"

/**
 * A validated department row, ready to send.
 *
 * @since 0.2.0
 * @category models
 */
export interface Department {
  readonly id?: string | undefined
  readonly name: string
  readonly parent_id: string
  readonly leader_user_id?: string | undefined
  readonly leader_open_id?: string | undefined
  readonly create_group_chat: boolean
  /** Things the user should know that did not stop the row, e.g. a dropped `leader_open_id`. */
  readonly warnings: ReadonlyArray<string>
}

const DepartmentId = Limit.Id({ unit: "characters" })

// Feishu's root department is "0": a department of the input with that id would become the parent of every
// top-level department. As a parent_id it is the root, never a row of the input.
const isNotRoot = Schema.makeFilter<string>(
  (s) => s !== ROOT_ID || `is "${ROOT_ID}", the id of the root department; give the department another id`,
  { description: "not the root department's id" }
)

// Cells that reach the schema as text: every string is trimmed first, as the CLI trims its cells, so that the checks
// and the request see what a person sees; an empty one (after trimming) reads as "not given" where a field is optional.
const cell = <S extends Schema.Top & { readonly Encoded: string }>(to: S) =>
  Schema.String.pipe(Schema.decodeTo(to, SchemaTransformation.trim()))
const Blank = Schema.Literal("")
const OptionalId = Schema.optional(cell(Schema.Union([Blank, DepartmentId.pipe(Schema.check(isNotRoot))])))
const OptionalText = Schema.optional(cell(Limit.Text))
const BooleanCell = Schema.Union([
  Schema.Boolean,
  cell(Schema.String.pipe(
    Schema.check(Schema.makeFilter((s: string) => s.length === 0 || Text.yesNo(s) !== undefined || Text.notYesNo(s)))
  ))
])

const truthy = (v: boolean | string | undefined): boolean =>
  v === true || (typeof v === "string" && Text.yesNo(v) === true)

const given = (s: string | undefined): string | undefined => (s === undefined || s.length === 0 ? undefined : s)

const DepartmentType = Schema.Struct({
  id: Schema.optional(Schema.String),
  name: Schema.String,
  parent_id: Schema.String,
  leader_user_id: Schema.optional(Schema.String),
  leader_open_id: Schema.optional(Schema.String),
  create_group_chat: Schema.Boolean,
  warnings: Schema.Array(Schema.String)
})

const RawRow = (maxNameLength: number) =>
  Schema.Struct({
    id: OptionalId,
    name: cell(Limit.Characters(1, maxNameLength)),
    parent_id: cell(DepartmentId),
    leader_user_id: OptionalText,
    leader_open_id: OptionalText,
    create_group_chat: Schema.optional(BooleanCell)
  })

/**
 * A row as `Departments.batchAdd` takes it: {@link Row}'s encoded side. Text as a spreadsheet cell holds it (trimmed;
 * empty reads as not given), `create_group_chat` a boolean or a yes/no cell. A field it does not declare (`nmae`) is a
 * compile error there, and a rejected row at run time.
 *
 * @since 0.3.0
 * @category models
 */
export type DepartmentRow = Schema.Codec.Encoded<ReturnType<typeof RawRow>>

/**
 * The row schema. `maxNameLength` limits `name` in characters; Feishu's v2 page documents no limit, so by default
 * only emptiness is checked and Feishu has the last word.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Row = (
  options: { readonly maxNameLength?: number | undefined } = {}
): Schema.Codec<Department, DepartmentRow> => {
  const Raw = RawRow(options.maxNameLength ?? Number.MAX_SAFE_INTEGER)
  return Raw.pipe(
    Schema.decodeTo(
      DepartmentType,
      SchemaTransformation.transform<typeof DepartmentType.Encoded, typeof Raw.Type>({
        decode: (raw) => {
          const leaderUser = given(raw.leader_user_id)
          const leaderOpen = given(raw.leader_open_id)
          const both = leaderUser !== undefined && leaderOpen !== undefined
          const id = given(raw.id)
          return {
            ...(id === undefined ? {} : { id }),
            name: raw.name,
            parent_id: raw.parent_id,
            ...(leaderUser === undefined ? {} : { leader_user_id: leaderUser }),
            ...(leaderOpen === undefined || both ? {} : { leader_open_id: leaderOpen }),
            create_group_chat: truthy(raw.create_group_chat),
            warnings: both
              ? [`leader_open_id ${JSON.stringify(leaderOpen)} ignored: leader_user_id is set and wins`]
              : []
          }
        },
        // The row's encoded form is the request item itself.
        encode: (d) => toSpec(d)
      })
    )
  )
}

/**
 * The request body entry for a validated row.
 *
 * @since 0.2.0
 * @category constructors
 */
export const toSpec = (d: Department): DepartmentSpec => ({
  ...(d.id === undefined ? {} : { id: d.id }),
  name: d.name,
  parent_id: d.parent_id,
  ...(d.leader_user_id === undefined ? {} : { leader_user_id: d.leader_user_id }),
  ...(d.leader_open_id === undefined ? {} : { leader_open_id: d.leader_open_id }),
  create_group_chat: d.create_group_chat
})
