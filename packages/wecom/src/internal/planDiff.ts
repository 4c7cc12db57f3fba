/**
 * The diff behind `SchoolPlan.compute` and the pure `applyToState`. One pass over the students rows, one over the
 * parents rows (they need to know which students are created, renamed or deleted), then the deletes (a student's
 * delete needs to know what happens to their parents). Memory: a few maps keyed by lower-cased ids.
 *
 * @internal
 */
import { DeleteLimit, Limit } from "@dirsync/core"
import * as Result from "effect/Result"
import type * as SchoolPlan from "../SchoolPlan.ts"
import * as SchoolState from "../SchoolState.ts"
import * as WeComSchema from "../WeComSchema.ts"
import * as Fingerprints from "./planFingerprint.ts"

const key = Limit.idKey

const rowsOf = (r: { readonly row: number; readonly rows?: ReadonlyArray<number> | undefined }) =>
  r.rows === undefined || r.rows.length === 0 ? [r.row] : [...r.rows]

const rowList = (rows: ReadonlyArray<number>) => `${rows.length === 1 ? "row" : "rows"} ${rows.join(", ")}`

const quote = (s: string) => JSON.stringify(s)

const byUserid = Fingerprints.byUserid

const sortedClasses = (ids: Iterable<number>) => [...new Set(ids)].toSorted((a, b) => a - b)

const sameClasses = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => {
  const x = sortedClasses(a)
  const y = sortedClasses(b)
  return x.length === y.length && x.every((id, i) => id === y[i])
}

const typeName: Record<number, string> = { 2: "a grade", 3: "a stage", 4: "a campus", 5: "the school" }

/** Row ids by lower-cased id, to find duplicates and collisions across rows (valid and invalid alike). */
const index = (entries: ReadonlyArray<{ readonly id?: string | undefined; readonly rows: ReadonlyArray<number> }>) => {
  const map = new Map<string, Array<number>>()
  for (const e of entries) {
    if (e.id === undefined || e.id.length === 0) continue
    const k = key(e.id)
    const known = map.get(k)
    if (known === undefined) map.set(k, [...e.rows])
    else known.push(...e.rows)
  }
  return map
}

interface RowIds {
  readonly rows: ReadonlyArray<number>
  readonly id?: string | undefined
  readonly newId?: string | undefined
}

/**
 * Which rows of one kind collide: a duplicated id (every copy), a rename onto another row's id, two renames onto
 * one id, a rename onto the row's own id. Returns the problem of each row by its first row number.
 */
const collisions = (kind: "student" | "parent", rows: ReadonlyArray<RowIds>) => {
  const idField = `${kind}_userid`
  const newField = `new_${kind}_userid`
  const ids = index(rows)
  const targets = index(rows.map((r) => ({ id: r.newId, rows: r.rows })))
  const problems = new Map<number, { field: string; message: string }>()
  for (const r of rows) {
    const first = r.rows[0]!
    if (r.id !== undefined && r.id.length > 0) {
      const same = ids.get(key(r.id))!
      if (same.length > r.rows.length) {
        const others = same.filter((n) => !r.rows.includes(n))
        problems.set(first, {
          field: idField,
          message: `is also used by ${rowList(others)} (${quote(key(r.id))}; ids compare case-insensitively); ` +
            "every copy is rejected"
        })
        continue
      }
    }
    if (r.newId === undefined) continue
    const t = key(r.newId)
    if (r.id !== undefined && t === key(r.id)) {
      problems.set(first, { field: newField, message: `is the same id as ${idField} (ids compare case-insensitively)` })
      continue
    }
    const owners = ids.get(t)
    if (owners !== undefined) {
      problems.set(first, {
        field: newField,
        message: `is ${quote(t)}, the ${idField} of ${rowList(owners)}; renaming onto it would collide`
      })
      continue
    }
    const also = targets.get(t)!.filter((n) => !r.rows.includes(n))
    if (also.length > 0) {
      problems.set(first, { field: newField, message: `is ${quote(t)}, also the rename target of ${rowList(also)}` })
    }
  }
  return { ids, targets, problems }
}

type Mutable<A> = { -readonly [K in keyof A]: A[K] }

/** A child as a parents row names it, resolved to the student it will be when the parent is written. */
type Resolved =
  | { readonly _tag: "ok"; readonly identity: string; readonly sendId: string; readonly classes: ReadonlyArray<number> }
  | { readonly _tag: "missing"; readonly message: string }

export const compute = (
  roster: SchoolPlan.Roster,
  state: SchoolState.State,
  options: SchoolPlan.Options
): SchoolPlan.Plan => {
  const prune = options.prune === true
  const departments = new Map(state.departments.map((d) => [d.id, d]))
  const students = new Map(state.students.map((s) => [key(s.student_userid), s]))
  const parents = new Map(state.parents.map((p) => [key(p.parent_userid), p]))
  /** Student key → the parents WeCom links to them. */
  const parentsOf = new Map<string, Array<string>>()
  for (const p of state.parents) {
    const pk = key(p.parent_userid)
    for (const c of p.children) {
      const sk = key(c.student_userid)
      const list = parentsOf.get(sk)
      if (list === undefined) parentsOf.set(sk, [pk])
      else if (!list.includes(pk)) list.push(pk)
    }
  }

  const rejected: Array<SchoolPlan.Rejected> = []
  const touched = new Set<number>()
  const mentioned = new Set<number>()
  const reject = (
    kind: "student" | "parent",
    rows: ReadonlyArray<number>,
    id: string,
    field: string,
    message: string
  ) => rejected.push({ kind, rows: rows.toSorted((a, b) => a - b), id, field, message })

  const invalid = roster.invalid ?? []
  for (const r of invalid) reject(r.kind, rowsOf(r), r.id ?? "", r.field, r.message)
  const invalidOf = (kind: "student" | "parent"): Array<RowIds> =>
    invalid.filter((r) => r.kind === kind).map((r) => ({ rows: rowsOf(r), id: r.id, newId: r.newId }))

  /** Class problems of a class list, or the sorted list. */
  const checkClasses = (
    ids: ReadonlyArray<number>
  ): { readonly classes: Array<number> } | { readonly message: string } => {
    const classes = sortedClasses(ids)
    if (classes.length > WeComSchema.DEPARTMENTS_MAX) {
      return { message: `has ${classes.length} classes; a student is in at most ${WeComSchema.DEPARTMENTS_MAX}` }
    }
    const problems = classes.flatMap((id) => {
      const d = departments.get(id)
      if (d === undefined) return [`has class ${id}, which does not exist in WeCom`]
      if (d.type !== SchoolState.CLASS_TYPE) {
        return [`has department ${id} (${quote(d.name)}), ${typeName[d.type] ?? `of type ${d.type}`}, not a class`]
      }
      return []
    })
    if (problems.length > 0) return { message: `${problems.join("; ")} (dirsync does not create classes)` }
    return { classes }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Students
  // ---------------------------------------------------------------------------------------------------------------
  const createStudents: Array<SchoolPlan.CreateStudent> = []
  const updateStudents: Array<SchoolPlan.UpdateStudent> = []
  /** Accepted creates: key → the student as created. */
  const createdStudents = new Map<string, SchoolPlan.CreateStudent>()
  /** Pending renames by the target's key → the current key; done renames by the old key → the current key. */
  const renamedTo = new Map<string, string>()
  const renamedFrom = new Map<string, string>()
  /** Keys of students rows that were rejected, for messages of the rows that name them. */
  const rejectedStudentRows = new Map<string, ReadonlyArray<number>>()
  /** Students listed by some row, valid or not: never pruned. */
  const listedStudents = new Set<string>()

  if (roster.students !== undefined) {
    const rows = roster.students.toSorted((a, b) => a.row - b.row)
    const all: Array<RowIds> = [
      ...rows.map((r) => ({ rows: rowsOf(r), id: r.value.student_userid, newId: r.value.new_student_userid })),
      ...invalidOf("student")
    ]
    for (const r of all) {
      if (r.id !== undefined && r.id.length > 0) listedStudents.add(key(r.id))
      if (r.newId !== undefined && r.newId.length > 0) listedStudents.add(key(r.newId))
    }
    const { problems } = collisions("student", all)
    for (const r of rows) {
      const v = r.value
      const rs = rowsOf(r)
      const k = key(v.student_userid)
      const no = (field: string, message: string) => {
        reject("student", rs, v.student_userid, field, message)
        rejectedStudentRows.set(k, rs)
        if (v.new_student_userid !== undefined) rejectedStudentRows.set(key(v.new_student_userid), rs)
      }
      const collision = problems.get(rs[0]!)
      if (collision !== undefined) {
        no(collision.field, collision.message)
        continue
      }
      let current = students.get(k)
      let rename: string | undefined
      if (v.new_student_userid !== undefined) {
        const nk = key(v.new_student_userid)
        const target = students.get(nk)
        if (current !== undefined && target !== undefined) {
          no(
            "new_student_userid",
            `is ${quote(v.new_student_userid)}, an existing student (${
              quote(target.name)
            }); renaming onto it would collide`
          )
          continue
        }
        if (current !== undefined && parents.has(nk)) {
          no("new_student_userid", `is ${quote(v.new_student_userid)}, an existing parent's userid`)
          continue
        }
        if (current === undefined && target === undefined) {
          no(
            "student_userid",
            `is ${quote(v.student_userid)}, not in WeCom, and neither is ${quote(v.new_student_userid)}: nothing to ` +
              "rename. To create the student, give the id they should have as student_userid, without new_student_userid"
          )
          continue
        }
        if (current !== undefined) rename = v.new_student_userid
        else current = target // renamed by an earlier apply: the row now describes the student under its new id
      }
      const classes = v.department === undefined ? undefined : checkClasses(v.department)
      if (classes !== undefined && "message" in classes) {
        no("department", classes.message)
        continue
      }
      if (current === undefined) {
        if (parents.has(k)) {
          no("student_userid", `is ${quote(v.student_userid)}, an existing parent's userid`)
          continue
        }
        if (v.name === undefined) {
          no("name", `is required to create student ${quote(v.student_userid)} (not in WeCom)`)
          continue
        }
        if (classes === undefined) {
          no(
            "department",
            `is required to create student ${quote(v.student_userid)} (not in WeCom): at least one class`
          )
          continue
        }
        const create: SchoolPlan.CreateStudent = {
          rows: rs,
          student_userid: v.student_userid,
          name: v.name,
          ...(v.mobile === undefined ? {} : { mobile: v.mobile }),
          department: classes.classes
        }
        createStudents.push(create)
        createdStudents.set(k, create)
        for (const id of create.department) {
          touched.add(id)
          mentioned.add(id)
        }
        continue
      }
      const ck = key(current.student_userid)
      if (rename !== undefined) renamedTo.set(key(rename), ck)
      else if (ck !== k) renamedFrom.set(k, ck)
      const update: Mutable<SchoolPlan.UpdateStudent> = { rows: rs, student_userid: current.student_userid }
      if (rename !== undefined) update.new_student_userid = rename
      if (v.name !== undefined && v.name !== current.name) update.name = { old: current.name, new: v.name }
      if (v.mobile !== undefined && v.mobile !== current.mobile) {
        update.mobile = current.mobile === undefined ? { new: v.mobile } : { old: current.mobile, new: v.mobile }
      }
      if (classes !== undefined && !sameClasses(classes.classes, current.department)) {
        update.department = { old: sortedClasses(current.department), new: classes.classes }
        for (const id of classes.classes) {
          touched.add(id)
          mentioned.add(id)
        }
        for (const id of current.department) mentioned.add(id)
      }
      if (Object.keys(update).length > 2) {
        updateStudents.push(update)
        for (const id of current.department) touched.add(id)
      }
    }
  }

  const deletingStudents = new Set<string>()
  if (prune && roster.students !== undefined) {
    for (const [k] of students) if (!listedStudents.has(k)) deletingStudents.add(k)
  }

  /** Resolves a parents row's child to the student it will be when parents are written (step 2). */
  const resolve = (id: string): Resolved => {
    const k = key(id)
    const existing = (sk: string): Resolved => {
      const s = students.get(sk)!
      if (deletingStudents.has(sk)) {
        return {
          _tag: "missing",
          message: `names student ${quote(id)}, whom the students file does not list, so this plan deletes them (prune)`
        }
      }
      return { _tag: "ok", identity: sk, sendId: s.student_userid, classes: s.department }
    }
    if (students.has(k)) return existing(k)
    const pendingFrom = renamedTo.get(k)
    if (pendingFrom !== undefined) return existing(pendingFrom) // still has the old id when parents are written
    const doneTo = renamedFrom.get(k)
    if (doneTo !== undefined) return existing(doneTo)
    const created = createdStudents.get(k)
    if (created !== undefined) {
      return { _tag: "ok", identity: k, sendId: created.student_userid, classes: created.department }
    }
    const rows = rejectedStudentRows.get(k)
    if (rows !== undefined) {
      return { _tag: "missing", message: `names student ${quote(id)}, whose students ${rowList(rows)} is rejected` }
    }
    return {
      _tag: "missing",
      message: `names student ${quote(id)}, who is not in WeCom${
        roster.students === undefined ? "" : " and not created by the students file"
      }`
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Parents
  // ---------------------------------------------------------------------------------------------------------------
  const createParents: Array<SchoolPlan.CreateParent> = []
  const updateParents: Array<SchoolPlan.UpdateParent> = []
  /** Parent key → the children identities an accepted update leaves them with. */
  const parentChildrenAfter = new Map<string, ReadonlySet<string>>()
  /** Parent key → how a roster row left them, for the message of a student delete they block. */
  const parentRowNote = new Map<string, string>()
  const listedParents = new Set<string>()

  if (roster.parents !== undefined) {
    const rows = roster.parents.toSorted((a, b) => a.row - b.row)
    const all: Array<RowIds> = [
      ...rows.map((r) => ({ rows: rowsOf(r), id: r.value.parent_userid, newId: r.value.new_parent_userid })),
      ...invalidOf("parent")
    ]
    for (const r of all) {
      if (r.id !== undefined && r.id.length > 0) listedParents.add(key(r.id))
      if (r.newId !== undefined && r.newId.length > 0) listedParents.add(key(r.newId))
    }
    for (const r of invalid) {
      if (r.kind === "parent" && r.id !== undefined && r.id.length > 0) {
        parentRowNote.set(key(r.id), `its parents ${rowList(rowsOf(r))} is rejected`)
      }
    }
    const { problems } = collisions("parent", all)
    for (const r of rows) {
      const v = r.value
      const rs = rowsOf(r)
      const k = key(v.parent_userid)
      const no = (field: string, message: string) => {
        reject("parent", rs, v.parent_userid, field, message)
        parentRowNote.set(k, `its parents ${rowList(rs)} is rejected`)
      }
      const collision = problems.get(rs[0]!)
      if (collision !== undefined) {
        no(collision.field, collision.message)
        continue
      }
      let current = parents.get(k)
      let rename: string | undefined
      if (v.new_parent_userid !== undefined) {
        const nk = key(v.new_parent_userid)
        const target = parents.get(nk)
        if (current !== undefined && target !== undefined) {
          no(
            "new_parent_userid",
            `is ${quote(v.new_parent_userid)}, an existing parent; renaming onto it would collide`
          )
          continue
        }
        if (current !== undefined && (students.has(nk) || createdStudents.has(nk) || renamedTo.has(nk))) {
          no("new_parent_userid", `is ${quote(v.new_parent_userid)}, a student's userid`)
          continue
        }
        if (current === undefined && target === undefined) {
          no(
            "parent_userid",
            `is ${quote(v.parent_userid)}, not in WeCom, and neither is ${quote(v.new_parent_userid)}: nothing to ` +
              "rename. To create the parent, give the id they should have as parent_userid, without new_parent_userid"
          )
          continue
        }
        if (current !== undefined) rename = v.new_parent_userid
        else current = target
      }

      // The row's children, resolved to the students they will be when the parent is written.
      let children: Array<{ readonly identity: string; readonly link: SchoolPlan.ChildLink }> | undefined
      let touchedByChildren: Array<number> = []
      if (v.children !== undefined && v.children.length > 0) {
        const problemsOfChildren: Array<string> = []
        const seen = new Map<string, { readonly id: string; readonly relation: string }>()
        children = []
        for (const c of v.children) {
          const resolved = resolve(c.student_userid)
          if (resolved._tag === "missing") {
            problemsOfChildren.push(resolved.message)
            continue
          }
          const before = seen.get(resolved.identity)
          if (before !== undefined) {
            if (before.relation !== c.relation) {
              problemsOfChildren.push(
                `names student ${quote(c.student_userid)} twice, as ${quote(before.relation)} and ${quote(c.relation)}`
              )
            }
            continue
          }
          seen.set(resolved.identity, { id: c.student_userid, relation: c.relation })
          children.push({
            identity: resolved.identity,
            link: { student_userid: resolved.sendId, relation: c.relation }
          })
          touchedByChildren = touchedByChildren.concat(resolved.classes)
        }
        if (problemsOfChildren.length > 0) {
          no("children", problemsOfChildren.join("; "))
          continue
        }
        if (children.length > WeComSchema.CHILDREN_MAX) {
          no("children", `has ${children.length} children; a parent has at most ${WeComSchema.CHILDREN_MAX}`)
          continue
        }
        children = children.toSorted((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0))
      }

      if (current === undefined) {
        // A student renamed onto this id in step 3 would collide with the parent created in step 2.
        if (students.has(k) || createdStudents.has(k) || renamedTo.has(k)) {
          no("parent_userid", `is ${quote(v.parent_userid)}, a student's userid`)
          continue
        }
        if (v.mobile === undefined) {
          no("mobile", `is required to create parent ${quote(v.parent_userid)} (not in WeCom)`)
          continue
        }
        if (children === undefined) {
          no("children", `are required to create parent ${quote(v.parent_userid)} (not in WeCom): at least one child`)
          continue
        }
        createParents.push({
          rows: rs,
          parent_userid: v.parent_userid,
          mobile: v.mobile,
          children: children.map((c) => c.link)
        })
        for (const id of touchedByChildren) touched.add(id)
        continue
      }

      const ck = key(current.parent_userid)
      const update: Mutable<SchoolPlan.UpdateParent> = { rows: rs, parent_userid: current.parent_userid }
      if (rename !== undefined) update.new_parent_userid = rename
      // A parent WeCom returns without a mobile has a hidden one (every parent has one): leave it as it is.
      if (v.mobile !== undefined && current.mobile !== undefined && v.mobile !== current.mobile) {
        update.mobile = { old: current.mobile, new: v.mobile }
      }
      if (children !== undefined) {
        const wanted = new Set(children.map((c) => `${c.identity} ${c.link.relation}`))
        const had = new Set(current.children.map((c) => `${key(c.student_userid)} ${c.relation}`))
        if (wanted.size !== had.size || [...wanted].some((x) => !had.has(x))) {
          update.children = {
            old: byUserid(current.children, (c) => c.student_userid),
            new: children.map((c) => c.link)
          }
          parentChildrenAfter.set(ck, new Set(children.map((c) => c.identity)))
        }
      } else {
        parentRowNote.set(ck, `its parents ${rowList(rs)} lists no children, which leaves them as they are`)
      }
      if (Object.keys(update).length > 2) {
        updateParents.push(update)
        for (const id of touchedByChildren) touched.add(id)
        for (const c of current.children) {
          for (const id of students.get(key(c.student_userid))?.department ?? []) touched.add(id)
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Deletes
  // ---------------------------------------------------------------------------------------------------------------
  const deleteParents: Array<SchoolPlan.DeleteParent> = []
  const deletedParents = new Set<string>()
  if (prune && roster.parents !== undefined) {
    for (const [k, p] of parents) {
      if (listedParents.has(k)) continue
      deletedParents.add(k)
      deleteParents.push({
        parent_userid: p.parent_userid,
        ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
        children: byUserid(p.children, (c) => c.student_userid)
      })
      for (const c of p.children) {
        for (const id of students.get(key(c.student_userid))?.department ?? []) touched.add(id)
      }
    }
  }

  const deleteStudents: Array<SchoolPlan.DeleteStudent> = []
  for (const k of deletingStudents) {
    const s = students.get(k)!
    const holding = (parentsOf.get(k) ?? []).filter((pk) => {
      if (deletedParents.has(pk)) return false
      const after = parentChildrenAfter.get(pk)
      return after === undefined || after.has(k)
    })
    if (holding.length > 0) {
      const names = holding.map((pk) => {
        const p = parents.get(pk)!
        const note = roster.parents === undefined
          ? "no parents file"
          : parentRowNote.get(pk) ?? "its parents row still lists this student"
        return `${quote(p.parent_userid)} (${note})`
      }).toSorted()
      reject(
        "student",
        [],
        s.student_userid,
        "",
        `is not in the students file, but WeCom still links ${holding.length === 1 ? "parent" : "parents"} ` +
          `${names.join(", ")} to them, and a student is deleted only after their parents are deleted or no longer ` +
          "list them: give a parents file whose rows for these parents leave this student out (or leave the parents " +
          "out, with prune)"
      )
      continue
    }
    deleteStudents.push({
      student_userid: s.student_userid,
      name: s.name,
      ...(s.mobile === undefined ? {} : { mobile: s.mobile }),
      department: sortedClasses(s.department)
    })
    for (const id of s.department) {
      touched.add(id)
      mentioned.add(id)
    }
  }

  const sortedRejected = rejected.toSorted((a, b) => {
    const x = a.rows[0] ?? Number.MAX_SAFE_INTEGER
    const y = b.rows[0] ?? Number.MAX_SAFE_INTEGER
    if (x !== y) return x - y
    if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1
    const ka = key(a.id)
    const kb = key(b.id)
    return ka < kb ? -1 : ka > kb ? 1 : a.field < b.field ? -1 : a.field > b.field ? 1 : 0
  })

  const classIds = [...touched].filter((id) => departments.get(id)?.type === SchoolState.CLASS_TYPE)
  const classNames: Record<string, string> = {}
  for (const id of sortedClasses([...mentioned])) {
    const d = departments.get(id)
    if (d !== undefined) classNames[id] = d.name
  }
  const limit = (deletes: number, current: number): SchoolPlan.DeleteLimit => ({
    deletes,
    current,
    allowed: allowed(current, options.maxDelete)
  })
  return {
    prune,
    ...(options.maxDelete === undefined ? {} : { maxDelete: formatMax(options.maxDelete) }),
    fingerprint: {
      state: Fingerprints.state(state),
      departments: Fingerprints.departments(state),
      classes: Fingerprints.classes(state, classIds)
    },
    deleteLimits: {
      students: limit(deleteStudents.length, students.size),
      parents: limit(deleteParents.length, parents.size)
    },
    classNames,
    actions: {
      createStudents: byUserid(createStudents, (a) => a.student_userid),
      createParents: byUserid(createParents, (a) => a.parent_userid),
      updateParents: byUserid(updateParents, (a) => a.parent_userid),
      updateStudents: byUserid(updateStudents, (a) => a.student_userid),
      deleteParents: byUserid(deleteParents, (a) => a.parent_userid),
      deleteStudents: byUserid(deleteStudents, (a) => a.student_userid)
    },
    rejected: sortedRejected
  }
}

/** `SchoolPlan.allowedDeletes`; here so the public module imports it rather than the other way round. */
export const allowed = DeleteLimit.allowed

export const formatMax = DeleteLimit.format

// =================================================================================================================
// applyToState
// =================================================================================================================

export const applyToState = (
  state: SchoolState.State,
  plan: SchoolPlan.Plan
): Result.Result<SchoolState.State, ReadonlyArray<string>> => {
  const problems: Array<string> = []
  const departments = new Map(state.departments.map((d) => [d.id, d]))
  const students = new Map<string, SchoolState.Student>(state.students.map((s) => [key(s.student_userid), s]))
  const parents = new Map<string, SchoolState.Parent>(state.parents.map((p) => [key(p.parent_userid), p]))
  const taken = (id: string) => students.has(key(id)) || parents.has(key(id))
  const checkClasses = (what: string, ids: ReadonlyArray<number>) => {
    if (ids.length === 0 || ids.length > WeComSchema.DEPARTMENTS_MAX) problems.push(`${what}: ${ids.length} classes`)
    for (const id of ids) {
      if (departments.get(id)?.type !== SchoolState.CLASS_TYPE) problems.push(`${what}: class ${id} does not exist`)
    }
  }
  const checkChildren = (what: string, children: ReadonlyArray<SchoolState.Child>) => {
    if (children.length === 0 || children.length > WeComSchema.CHILDREN_MAX) {
      problems.push(`${what}: ${children.length} children`)
    }
    const seen = new Set<string>()
    for (const c of children) {
      const k = key(c.student_userid)
      if (!students.has(k)) problems.push(`${what}: child ${c.student_userid} does not exist`)
      if (seen.has(k)) problems.push(`${what}: child ${c.student_userid} twice`)
      seen.add(k)
    }
  }
  const a = plan.actions
  for (const c of a.createStudents) {
    const what = `create student ${c.student_userid}`
    if (taken(c.student_userid)) problems.push(`${what}: userid exists`)
    checkClasses(what, c.department)
    students.set(key(c.student_userid), {
      student_userid: c.student_userid,
      name: c.name,
      ...(c.mobile === undefined ? {} : { mobile: c.mobile }),
      department: c.department
    })
  }
  for (const c of a.createParents) {
    const what = `create parent ${c.parent_userid}`
    if (taken(c.parent_userid)) problems.push(`${what}: userid exists`)
    checkChildren(what, c.children)
    parents.set(key(c.parent_userid), { parent_userid: c.parent_userid, mobile: c.mobile, children: c.children })
  }
  for (const u of a.updateParents) {
    const what = `update parent ${u.parent_userid}`
    const k = key(u.parent_userid)
    const p = parents.get(k)
    if (p === undefined) {
      problems.push(`${what}: no such parent`)
      continue
    }
    if (u.children !== undefined) checkChildren(what, u.children.new)
    const next: SchoolState.Parent = {
      parent_userid: u.new_parent_userid ?? p.parent_userid,
      ...(u.mobile !== undefined ? { mobile: u.mobile.new } : p.mobile === undefined ? {} : { mobile: p.mobile }),
      // WeCom ignores an empty list: the children stay.
      children: u.children !== undefined && u.children.new.length > 0 ? u.children.new : p.children
    }
    if (u.new_parent_userid !== undefined) {
      if (taken(u.new_parent_userid)) problems.push(`${what}: rename target ${u.new_parent_userid} exists`)
      parents.delete(k)
    }
    parents.set(key(next.parent_userid), next)
  }
  for (const u of a.updateStudents) {
    const what = `update student ${u.student_userid}`
    const k = key(u.student_userid)
    const s = students.get(k)
    if (s === undefined) {
      problems.push(`${what}: no such student`)
      continue
    }
    if (u.department !== undefined) checkClasses(what, u.department.new)
    const next: SchoolState.Student = {
      student_userid: u.new_student_userid ?? s.student_userid,
      name: u.name?.new ?? s.name,
      ...(u.mobile !== undefined ? { mobile: u.mobile.new } : s.mobile === undefined ? {} : { mobile: s.mobile }),
      department: u.department?.new ?? s.department
    }
    if (u.new_student_userid !== undefined) {
      if (taken(u.new_student_userid)) problems.push(`${what}: rename target ${u.new_student_userid} exists`)
      students.delete(k)
      // WeCom links parents to children by its own internal id: the link follows the rename.
      for (const [pk, p] of parents) {
        if (p.children.some((c) => key(c.student_userid) === k)) {
          parents.set(pk, {
            ...p,
            children: p.children.map((c) =>
              key(c.student_userid) === k ? { ...c, student_userid: u.new_student_userid! } : c
            )
          })
        }
      }
    }
    students.set(key(next.student_userid), next)
  }
  for (const d of a.deleteParents) {
    if (!parents.delete(key(d.parent_userid))) problems.push(`delete parent ${d.parent_userid}: no such parent`)
  }
  const held = new Set<string>()
  for (const p of parents.values()) for (const c of p.children) held.add(key(c.student_userid))
  for (const d of a.deleteStudents) {
    const k = key(d.student_userid)
    if (held.has(k)) problems.push(`delete student ${d.student_userid}: still has parents`)
    if (!students.delete(k)) problems.push(`delete student ${d.student_userid}: no such student`)
  }
  return problems.length > 0
    ? Result.fail(problems)
    : Result.succeed({
      departments: state.departments,
      students: [...students.values()],
      parents: [...parents.values()]
    })
}
