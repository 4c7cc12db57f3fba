/**
 * The school directory as WeCom holds it: its classes (and the grades, stages, campuses and school above them), its
 * students with their classes, and its parents with their children. `SchoolDirectory.read` builds one from the
 * vendor's read endpoints; `SchoolPlan` compares one with a roster. A plain value (no Effect, no I/O), so a plan can
 * be computed, fingerprinted and tested without a network.
 *
 * Ids are kept exactly as WeCom returns them; comparisons with a roster are case-insensitive (`Limit.idKey`), as
 * WeCom's own userid matching is.
 *
 * @since 0.3.0
 */

/**
 * A node of the school's department tree (`school/department/list`). `type`: 1 class (班级), 2 grade (年级),
 * 3 stage (学段), 4 campus (校区), 5 school (学校). Only classes hold students.
 *
 * @since 0.3.0
 * @category models
 */
export interface Department {
  readonly id: number
  readonly parentid: number
  readonly name: string
  readonly type: number
}

/**
 * A student as `school/user/list` returns it, reduced to the fields a roster can set.
 *
 * @since 0.3.0
 * @category models
 */
export interface Student {
  readonly student_userid: string
  readonly name: string
  /** Absent when WeCom returns none (or hides it from this app). */
  readonly mobile?: string | undefined
  /** Class ids, in the order WeCom returns them; compared with a roster as a set. */
  readonly department: ReadonlyArray<number>
}

/**
 * One parent–child link.
 *
 * @since 0.3.0
 * @category models
 */
export interface Child {
  readonly student_userid: string
  readonly relation: string
}

/**
 * A parent with every child WeCom links to them. `children` is what `batch_update_parent` replaces as a whole.
 *
 * @since 0.3.0
 * @category models
 */
export interface Parent {
  readonly parent_userid: string
  /** Absent when WeCom hides parents' mobiles from this app (third-party apps without the admin's grant). */
  readonly mobile?: string | undefined
  readonly children: ReadonlyArray<Child>
}

/**
 * The whole directory at one moment.
 *
 * @since 0.3.0
 * @category models
 */
export interface State {
  readonly departments: ReadonlyArray<Department>
  readonly students: ReadonlyArray<Student>
  readonly parents: ReadonlyArray<Parent>
}

/**
 * The department `type` of a class (班级).
 *
 * @since 0.3.0
 * @category constants
 */
export const CLASS_TYPE = 1

/**
 * An empty school: no departments, students or parents.
 *
 * @since 0.3.0
 * @category constructors
 */
export const empty: State = { departments: [], students: [], parents: [] }
