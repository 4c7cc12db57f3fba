/**
 * Every WeCom schema of this package, for school contacts (家校通讯录): the rows of `batch_update_student` and
 * `batch_update_parent` with every documented limit, and the replies of the batch endpoints and `school/user/get`.
 *
 * **Details**
 *
 * - `student_userid` / `parent_userid` and their `new_*` renames: 1–64 UTF-8 bytes, digits, letters and `_ - @ .`,
 *   starting with a digit or letter; compared case-insensitively.
 * - `name`: 1–32 characters (Unicode code points: "😀" is one character, as is "张"), not only spaces.
 * - Every text field is well-formed Unicode (no lone surrogate, which JSON input can hold as `"\ud800"`): WeCom
 *   refuses the whole request for one.
 * - `department`: 1 to 20 class ids (an empty list would take the student out of every class). `children`: at most
 *   10, each `relation` 1–32 UTF-8 bytes (10 CJK characters fit, 11 do not).
 * - `mobile`: at most 32 characters of digits, `+` and `-` (WeCom errcode 60103).
 * - At most 100 rows per call: the pipeline chunks to {@link BATCH_MAX}.
 *
 * Validating locally matters: WeCom rejects the **whole** request (100 rows) for one over-length field.
 *
 * @since 0.1.0
 */
import { Limit } from "@dirsync/core"
import * as Schema from "effect/Schema"

/**
 * Rows per `batch_update_student` / `batch_update_parent` call.
 *
 * @since 0.1.0
 * @category constants
 */
export const BATCH_MAX = 100

/**
 * Classes per student.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEPARTMENTS_MAX = 20

/**
 * Children per parent.
 *
 * @since 0.1.0
 * @category constants
 */
export const CHILDREN_MAX = 10

/**
 * A school userid: 1–64 UTF-8 bytes of digits, letters and `_ - @ .`, starting with a digit or letter.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserId = Limit.Id({ unit: "bytes", max: 64 })

// Hoisted: a regex literal is a new RegExp object each time it is evaluated, here twice per row.
const mobilePattern = /^[0-9+-]{1,32}$/

const isMobile = Schema.makeFilter<string>(
  (s) =>
    mobilePattern.test(s) ||
    (s.length === 0 ? "is empty" : `must be at most 32 characters of digits, + and -, got ${JSON.stringify(s)}`),
  { description: "a mobile number: at most 32 digits, + and -" }
)

/**
 * A mobile number as WeCom accepts it (errcode 60103 otherwise).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Mobile = Schema.String.pipe(Schema.check(isMobile))

/**
 * A student's name: 1–32 characters.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StudentName = Limit.Characters(1, 32)

const ClassId = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1)))

// WeCom replaces a student's classes with the list sent: an empty list would take the student out of every class,
// which no roster means (a blank or ";" cell is the usual cause). Leaving `department` out keeps the classes.
const isNotEmptyList = Schema.makeFilter<ReadonlyArray<unknown>>(
  (a) =>
    a.length > 0 ||
    "is empty: it would take the student out of every class; leave department out to keep the student's classes",
  { description: "at least one class" }
)

/**
 * A student's classes: 1 to 20 class (department) ids. WeCom replaces the student's classes with this list, so an
 * empty one (every class left) is refused; leave the field out to keep the classes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClassIds = Schema.Array(ClassId).pipe(Schema.check(isNotEmptyList, Limit.isMaxItems(DEPARTMENTS_MAX)))

/**
 * A parent–child relation such as `爸爸`: 1–32 UTF-8 bytes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Relation = Limit.Bytes(1, 32)

/**
 * One row of `batch_update_student`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StudentUpdate = Schema.Struct({
  student_userid: UserId,
  new_student_userid: Schema.optionalKey(UserId),
  mobile: Schema.optionalKey(Mobile),
  name: Schema.optionalKey(StudentName),
  department: Schema.optionalKey(ClassIds)
})

/**
 * @since 0.1.0
 * @category models
 */
export type StudentUpdate = typeof StudentUpdate.Type

/**
 * A row as `SchoolContacts.batchUpdateStudents` takes it: {@link StudentUpdate}'s encoded side. A field it does not
 * declare (`nmae`) is a compile error there, and a rejected row at run time.
 *
 * @since 0.3.0
 * @category models
 */
export type StudentRow = typeof StudentUpdate.Encoded

/**
 * A parent's link to one child.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChildLink = Schema.Struct({ student_userid: UserId, relation: Relation })

/**
 * One row of `batch_update_parent`. `children`, when given, replaces the parent's children.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ParentUpdate = Schema.Struct({
  parent_userid: UserId,
  new_parent_userid: Schema.optionalKey(UserId),
  mobile: Schema.optionalKey(Mobile),
  children: Schema.optionalKey(Schema.Array(ChildLink).pipe(Schema.check(Limit.isMaxItems(CHILDREN_MAX))))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ParentUpdate = typeof ParentUpdate.Type

/**
 * A row as `SchoolContacts.batchUpdateParents` takes it: {@link ParentUpdate}'s encoded side (its `children` too).
 *
 * @since 0.3.0
 * @category models
 */
export type ParentRow = typeof ParentUpdate.Encoded

/**
 * One failed item of a batch reply. Item codes are open integers (WeCom's own examples use 1 and 1111).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ItemFailure = Schema.Struct({
  student_userid: Schema.optionalKey(Schema.String),
  parent_userid: Schema.optionalKey(Schema.String),
  errcode: Schema.Number,
  errmsg: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ItemFailure = typeof ItemFailure.Type

/**
 * The reply of both batch endpoints: `result_list` lists the failed items only.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BatchReply = Schema.Struct({
  errcode: Schema.optionalKey(Schema.Number),
  errmsg: Schema.optionalKey(Schema.String),
  result_list: Schema.optionalKey(Schema.Array(ItemFailure))
})

/**
 * @since 0.1.0
 * @category models
 */
export type BatchReply = typeof BatchReply.Type

/**
 * The reply of `GET /cgi-bin/school/user/get`: `user_type` 1 is a student, 2 a parent. The fields a rename check
 * compares with the row (name, mobile, classes; mobile, children) are read when WeCom sends them.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserReply = Schema.Struct({
  user_type: Schema.Number,
  student: Schema.optionalKey(Schema.Struct({
    student_userid: Schema.String,
    name: Schema.optionalKey(Schema.String),
    mobile: Schema.optionalKey(Schema.String),
    department: Schema.optionalKey(Schema.Array(Schema.Number))
  })),
  parent: Schema.optionalKey(Schema.Struct({
    parent_userid: Schema.String,
    mobile: Schema.optionalKey(Schema.String),
    children: Schema.optionalKey(
      Schema.Array(Schema.Struct({ student_userid: Schema.String, relation: Schema.String }))
    )
  }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type UserReply = typeof UserReply.Type
