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

// --- creates and deletes (issue 18) ------------------------------------------------------------------------------

const isSomeClass = Schema.makeFilter<ReadonlyArray<unknown>>(
  (a) => a.length > 0 || "is empty: a new student needs at least one class",
  { description: "at least one class" }
)

/**
 * A new student's classes: 1 to 20 class (department) ids.
 *
 * @since 0.3.0
 * @category schemas
 */
export const NewClassIds = Schema.Array(ClassId).pipe(Schema.check(isSomeClass, Limit.isMaxItems(DEPARTMENTS_MAX)))

/**
 * One row of `batch_create_student` (doc 92328 / 92037, fields as `create_student`, 92035): userid, name and
 * classes required, mobile optional; `to_invite` (default true) only matters for a verified school.
 *
 * @since 0.3.0
 * @category schemas
 */
export const StudentCreate = Schema.Struct({
  student_userid: UserId,
  name: StudentName,
  department: NewClassIds,
  mobile: Schema.optionalKey(Mobile),
  to_invite: Schema.optionalKey(Schema.Boolean)
})

/**
 * @since 0.3.0
 * @category models
 */
export type StudentCreate = typeof StudentCreate.Type

/**
 * A row as `SchoolContacts.batchCreateStudents` takes it: {@link StudentCreate}'s encoded side.
 *
 * @since 0.3.0
 * @category models
 */
export type StudentCreateRow = typeof StudentCreate.Encoded

// Inferred: the doc lists `children` without saying it may be empty, and a parent exists in 家校通讯录 only through a
// child; a row without one is refused here rather than sent.
const isSomeChild = Schema.makeFilter<ReadonlyArray<unknown>>(
  (a) => a.length > 0 || "is empty: a new parent needs at least one child",
  { description: "at least one child" }
)

/**
 * One row of `batch_create_parent` (doc 92078, fields as `create_parent`, 92077): userid, mobile (required for a
 * parent) and 1 to 10 children, each `relation` 1–32 UTF-8 bytes.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ParentCreate = Schema.Struct({
  parent_userid: UserId,
  mobile: Mobile,
  children: Schema.Array(ChildLink).pipe(Schema.check(isSomeChild, Limit.isMaxItems(CHILDREN_MAX))),
  to_invite: Schema.optionalKey(Schema.Boolean)
})

/**
 * @since 0.3.0
 * @category models
 */
export type ParentCreate = typeof ParentCreate.Type

/**
 * A row as `SchoolContacts.batchCreateParents` takes it: {@link ParentCreate}'s encoded side (its `children` too).
 *
 * @since 0.3.0
 * @category models
 */
export type ParentCreateRow = typeof ParentCreate.Encoded

/**
 * One row of `batch_delete_student` (doc 92040): the student's userid. The call's body is `useridlist`, at most 100.
 *
 * @since 0.3.0
 * @category schemas
 */
export const StudentDelete = Schema.Struct({ student_userid: UserId })

/**
 * @since 0.3.0
 * @category models
 */
export type StudentDelete = typeof StudentDelete.Type

/**
 * A row as `SchoolContacts.batchDeleteStudents` takes it.
 *
 * @since 0.3.0
 * @category models
 */
export type StudentDeleteRow = typeof StudentDelete.Encoded

/**
 * One row of `batch_delete_parent` (doc 92080): the parent's userid.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ParentDelete = Schema.Struct({ parent_userid: UserId })

/**
 * @since 0.3.0
 * @category models
 */
export type ParentDelete = typeof ParentDelete.Type

/**
 * A row as `SchoolContacts.batchDeleteParents` takes it.
 *
 * @since 0.3.0
 * @category models
 */
export type ParentDeleteRow = typeof ParentDelete.Encoded

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

// --- reads (issue 18) --------------------------------------------------------------------------------------------
// Decoded leniently where WeCom may leave a field out (mobiles hidden from third-party apps, `is_subscribe`) and
// strictly where the directory cannot be rebuilt without it (ids, names, classes, relations). Unknown extra fields
// are ignored (and dropped). A reply that lacks a required field fails its call as a reply that proves nothing.

/**
 * A parent as `school/user/list` embeds it in a student (doc 92043): the link's `relation`, the parent's `mobile`
 * (absent when WeCom hides it from the app) and whether they follow the school (`is_subscribe`).
 *
 * @since 0.3.0
 * @category schemas
 */
export const ListedStudentParent = Schema.Struct({
  parent_userid: Schema.String,
  relation: Schema.String,
  mobile: Schema.optionalKey(Schema.String),
  is_subscribe: Schema.optionalKey(Schema.Number),
  external_userid: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.3.0
 * @category models
 */
export type ListedStudentParent = typeof ListedStudentParent.Type

/**
 * A student as `school/user/list` returns it (doc 92043). `department` is every class of the student, not only the
 * one read. `parents` is absent, rather than empty, only when WeCom leaves it out (not shown in the doc; the reader
 * then asks `list_parent`).
 *
 * @since 0.3.0
 * @category schemas
 */
export const ListedStudent = Schema.Struct({
  student_userid: Schema.String,
  name: Schema.String,
  mobile: Schema.optionalKey(Schema.String),
  department: Schema.Array(Schema.Number),
  parents: Schema.optionalKey(Schema.Array(ListedStudentParent))
})

/**
 * @since 0.3.0
 * @category models
 */
export type ListedStudent = typeof ListedStudent.Type

/**
 * The reply of `GET school/user/list?department_id=`. `students` may be left out for an empty department
 * (inferred: the doc shows only a full class).
 *
 * @since 0.3.0
 * @category schemas
 */
export const StudentListReply = Schema.Struct({ students: Schema.optionalKey(Schema.Array(ListedStudent)) })

/**
 * @since 0.3.0
 * @category models
 */
export type StudentListReply = typeof StudentListReply.Type

/**
 * A child as `school/user/list_parent` lists it in a parent (doc 96741), with the child's `name`.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ListedChild = Schema.Struct({
  student_userid: Schema.String,
  relation: Schema.String,
  name: Schema.optionalKey(Schema.String)
})

/**
 * A parent as `school/user/list_parent` returns it (doc 96741). Whether `children` holds only the children in the
 * department read or all of them is not documented; the reader merges either.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ListedParent = Schema.Struct({
  parent_userid: Schema.String,
  mobile: Schema.optionalKey(Schema.String),
  is_subscribe: Schema.optionalKey(Schema.Number),
  external_userid: Schema.optionalKey(Schema.String),
  children: Schema.Array(ListedChild)
})

/**
 * @since 0.3.0
 * @category models
 */
export type ListedParent = typeof ListedParent.Type

/**
 * The reply of `GET school/user/list_parent?department_id=`. `parents` may be left out for a department without
 * parents (inferred).
 *
 * @since 0.3.0
 * @category schemas
 */
export const ParentListReply = Schema.Struct({ parents: Schema.optionalKey(Schema.Array(ListedParent)) })

/**
 * @since 0.3.0
 * @category models
 */
export type ParentListReply = typeof ParentListReply.Type
