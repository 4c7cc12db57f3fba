/**
 * The school of drill D6: a WeCom school directory before a new term (a grade tree, students in classes, parents with
 * their children, some with children in two classes) and the new term's roster, with the churn a school year brings:
 * the top grade leaves and a new intake arrives in the classes prepared for it, a few pupils leave or join elsewhere,
 * some change class, name or mobile, some get a new userid, parents join, leave, change mobile or userid, and
 * families gain or lose children.
 *
 * Besides the seed and the two roster files (students, and parents in the long format: one line per parent–child
 * link), it gives what the drill checks against, computed here and not by the product: the counts a plan must show
 * and the directory WeCom must hold once the plan is applied.
 */
import { makeRandom } from "./lib.ts"
import type { Parent, State, Student } from "./lib.ts"

// =============================================================================
// Models
// =============================================================================

export interface ExpectedStudent {
  readonly id: string
  readonly name: string
  readonly mobile: string | undefined
  readonly department: ReadonlyArray<number>
}

export interface ExpectedParent {
  readonly id: string
  readonly mobile: string
  /** Children by final userid (lower case) and relation. */
  readonly children: ReadonlyArray<{ readonly id: string; readonly relation: string }>
}

/** The counts `dirsync wecom plan --json` must print (its `summary`). */
export interface PlanCounts {
  createStudent: number
  updateStudent: number
  renameStudent: number
  deleteStudent: number
  createParent: number
  updateParent: number
  renameParent: number
  deleteParent: number
  rejected: number
}

export interface School {
  readonly seed: unknown
  readonly studentsCsv: string
  readonly parentsCsv: string
  readonly classes: number
  readonly before: { readonly students: number; readonly parents: number }
  readonly expected: {
    readonly students: ReadonlyMap<string, ExpectedStudent>
    readonly parents: ReadonlyMap<string, ExpectedParent>
  }
  readonly counts: PlanCounts
  /**
   * Roster rows whose userid is spelt in upper case: a pupil who stays is matched case-insensitively (no change of
   * its own), a new one is created as spelt.
   */
  readonly upperCaseRows: number
  /** Kept pupils whose parent rows name them by their new userid (a rename in the same plan). */
  readonly childrenByNewId: number
}

// =============================================================================
// Generation
// =============================================================================

const SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"]
const GIVEN = ["子涵", "欣怡", "梓萱", "浩然", "宇轩", "一诺", "思远", "雨桐", "俊杰", "可馨", "博文", "佳怡", "明轩"]
const GRADE_NAMES = ["一年级", "二年级", "三年级", "四年级", "五年级", "六年级"]

interface Pupil {
  /** The userid before the term (new pupils: their userid). */
  readonly id: string
  name: string
  mobile: string | undefined
  department: Array<number>
  newId: string | undefined
  leaves: boolean
  readonly isNew: boolean
  /** Changed class, name or mobile this term (an update besides any rename). */
  changed: boolean
}

interface Family {
  readonly parents: Array<{
    readonly id: string
    mobile: string
    readonly relation: string
    newId: string | undefined
    readonly isNew: boolean
  }>
  /** Children before the term, and after it. */
  readonly before: Array<Pupil>
  readonly after: Array<Pupil>
}

const classId = (grade: number, c: number) => grade * 100 + c + 1
const key = (s: string) => s.toLowerCase()

/**
 * A school of `n` students in six grades, and its next term's roster. The leavers are the top grade plus 6% of the
 * rest: about 21.7% of the students, just over WeCom's delete rule (more than 50 and more than 20%), so the plan
 * needs `--max-delete`; `maxDeleteShare` is the share of either kind the plan deletes, for choosing it.
 */
export const makeSchool = (n: number, seed: number): School & { readonly maxDeleteShare: number } => {
  const random = makeRandom(seed)
  const chance = (p: number) => random.next() < p
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[random.int(0, xs.length - 1)]!
  const perGrade = Math.max(2, Math.ceil(n / 6 / 40))
  // Grades 2..7 hold the six years; grade 8 is the new intake's, its classes made empty before the term.
  const departments: Array<{ id: number; parentid: number; name: string; type: number }> = []
  for (let g = 2; g <= 8; g++) {
    departments.push({ id: g, parentid: 1, name: g === 8 ? "新一年级" : GRADE_NAMES[g - 2]!, type: 2 })
    for (let c = 0; c < perGrade; c++) {
      departments.push({ id: classId(g, c), parentid: g, name: `${c + 1}班`, type: 1 })
    }
  }
  const nameOf = () => `${pick(SURNAMES)}${pick(GIVEN)}`
  let serial = 0
  const nextStudentId = () => `stu${String(++serial).padStart(6, "0")}`
  let parentSerial = 0
  const nextParent = (relation: string, isNew: boolean) => {
    parentSerial++
    return {
      id: `par${String(parentSerial).padStart(6, "0")}`,
      mobile: `138${String(parentSerial).padStart(8, "0")}`,
      relation,
      newId: undefined as string | undefined,
      isNew
    }
  }
  const newFamilyParents = (isNew: boolean) =>
    chance(0.7)
      ? [nextParent("爸爸", isNew), nextParent("妈妈", isNew)]
      : [nextParent(pick(["妈妈", "爸爸", "奶奶"]), isNew)]

  // --- before the term ------------------------------------------------------------------------------------------
  const pupils: Array<Pupil> = []
  const families: Array<Family> = []
  const familyOf = new Map<Pupil, Family>()
  const join = (p: Pupil, siblingShare: number, pool: ReadonlyArray<Family>, isNew: boolean) => {
    const candidates = pool.filter((f) => f.before.length + f.after.length < 6)
    const f = candidates.length > 0 && chance(siblingShare)
      ? pick(candidates)
      : { parents: newFamilyParents(isNew), before: [], after: [] }
    if (!families.includes(f)) families.push(f)
    familyOf.set(p, f)
    return f
  }
  for (let i = 0; i < n; i++) {
    const grade = 2 + (i % 6)
    const c = Math.floor(i / 6) % perGrade
    const department = [classId(grade, c)]
    // Some pupils sit in a second class of their grade (a split class, a special stream).
    if (perGrade > 1 && chance(0.04)) department.push(classId(grade, (c + 1) % perGrade))
    const p: Pupil = {
      id: nextStudentId(),
      name: nameOf(),
      mobile: undefined,
      department,
      newId: undefined,
      leaves: false,
      isNew: false,
      changed: false
    }
    pupils.push(p)
    join(p, 0.12, families, false).before.push(p)
  }
  const seedParents = families.flatMap((f) =>
    f.parents.map((parent) => ({
      parent_userid: parent.id,
      mobile: parent.mobile,
      children: f.before.map((child) => ({ student_userid: child.id, relation: parent.relation }))
    }))
  )
  const seedStudents = pupils.map((p) => ({ student_userid: p.id, name: p.name, department: [...p.department] }))

  // --- the term ---------------------------------------------------------------------------------------------------
  // Leavers: the top grade (grade 7), then exactly 6% of the others, drawn at random.
  const others = pupils.filter((p) => !p.department.some((d) => Math.floor(d / 100) === 7))
  for (const p of pupils) if (!others.includes(p)) p.leaves = true
  const randomLeavers = Math.ceil(others.length * 0.06)
  for (let left = 0; left < randomLeavers;) {
    const p = pick(others)
    if (!p.leaves) {
      p.leaves = true
      left++
    }
  }
  const kept = pupils.filter((p) => !p.leaves)
  for (const f of families) f.after.push(...f.before.filter((p) => !p.leaves))
  // Changes of the pupils who stay.
  let upperCaseRows = 0
  for (const p of kept) {
    if (chance(0.04)) {
      const grade = Math.floor(p.department[0]! / 100)
      const c = (p.department[0]! % 100) - 1
      p.department = [classId(grade, (c + 1 + random.int(0, perGrade - 2)) % perGrade)]
      p.changed = true
    }
    if (chance(0.02)) {
      const before = p.name
      while (p.name === before) p.name = `${nameOf()}${chance(0.5) ? "🌟" : ""}`
      p.changed = true
    }
    if (chance(0.02)) {
      p.mobile = `139${p.id.slice(3).padStart(8, "0")}`
      p.changed = true
    }
    if (chance(0.015)) p.newId = `${p.id}-t2`
  }
  // The new intake fills grade 8 as the leaving grade did; 1% more join the other grades.
  const intake = Math.round(n / 6)
  const joiners = Math.ceil(n * 0.01)
  const keptFamilies = families.filter((f) => f.after.length > 0)
  const leftFamilies = families.filter((f) => f.after.length === 0)
  for (let i = 0; i < intake + joiners; i++) {
    const department = i < intake
      ? [classId(8, i % perGrade)]
      : [classId(2 + random.int(0, 4), random.int(0, perGrade - 1))]
    const p: Pupil = {
      id: nextStudentId(),
      name: nameOf(),
      mobile: chance(0.3) ? `137${String(serial).padStart(8, "0")}` : undefined,
      department,
      newId: undefined,
      leaves: false,
      isNew: true,
      changed: false
    }
    pupils.push(p)
    // A younger sibling of a family that stays, or of one whose child just left (the family comes back), or new.
    const f = chance(0.15)
      ? join(p, 1, keptFamilies, true)
      : chance(0.04)
      ? join(p, 1, leftFamilies, true)
      : join(p, 0, [], true)
    f.after.push(p)
  }
  // Parents who stay: a new mobile, a new userid.
  for (const f of families) {
    if (f.after.length === 0) continue
    for (const parent of f.parents) {
      if (parent.isNew) continue
      if (chance(0.02)) parent.mobile = `136${parent.id.slice(3).padStart(8, "0")}`
      if (chance(0.01)) parent.newId = `${parent.id}-t2`
    }
  }

  // --- the roster files -------------------------------------------------------------------------------------------
  const spell = (id: string) => {
    if (chance(0.02)) {
      upperCaseRows++
      return id.toUpperCase()
    }
    return id
  }
  const studentLines = ["student_userid,new_student_userid,name,mobile,department"]
  // A pupil who stays keeps the userid as WeCom spells it; a new one is created as the roster spells it.
  const createdAs = new Map<Pupil, string>()
  for (const p of pupils.filter((p) => !p.leaves)) {
    const id = spell(p.id)
    if (p.isNew) createdAs.set(p, id)
    studentLines.push(`${id},${p.newId ?? ""},${p.name},${p.mobile ?? ""},${p.department.join(";")}`)
  }
  const parentLines = ["parent_userid,new_parent_userid,mobile,student_userid,relation"]
  let childrenByNewId = 0
  for (const f of families) {
    for (const child of f.after) {
      // Next term's parents file names a renamed pupil by the new userid, as the school's records then do.
      if (child.newId !== undefined) childrenByNewId++
      for (const parent of f.parents) {
        parentLines.push(
          `${parent.id},${parent.newId ?? ""},${parent.mobile},${child.newId ?? child.id},${parent.relation}`
        )
      }
    }
  }

  // --- what the plan must count, and what WeCom must hold after it --------------------------------------------------
  const counts: PlanCounts = {
    createStudent: 0,
    updateStudent: 0,
    renameStudent: 0,
    deleteStudent: 0,
    createParent: 0,
    updateParent: 0,
    renameParent: 0,
    deleteParent: 0,
    rejected: 0
  }
  const students = new Map<string, ExpectedStudent>()
  for (const p of pupils) {
    if (p.leaves) {
      counts.deleteStudent++
      continue
    }
    if (p.isNew) counts.createStudent++
    else {
      if (p.changed) counts.updateStudent++
      if (p.newId !== undefined) counts.renameStudent++
    }
    const id = p.newId ?? createdAs.get(p) ?? p.id
    students.set(key(id), {
      id,
      name: p.name,
      mobile: p.mobile,
      department: p.department.toSorted((a, b) => a - b)
    })
  }
  const parents = new Map<string, ExpectedParent>()
  const linkSet = (children: ReadonlyArray<Pupil>, relation: string) =>
    children.map((c) => `${key(c.id)} ${relation}`).toSorted().join("|")
  for (const f of families) {
    for (const parent of f.parents) {
      if (f.after.length === 0) {
        if (!parent.isNew) counts.deleteParent++
        continue
      }
      const seeded = seedParents.find((x) => x.parent_userid === parent.id)
      if (parent.isNew) counts.createParent++
      else {
        const childrenChanged = linkSet(f.before, parent.relation) !== linkSet(f.after, parent.relation)
        if (childrenChanged || seeded?.mobile !== parent.mobile) counts.updateParent++
        if (parent.newId !== undefined) counts.renameParent++
      }
      const id = parent.newId ?? parent.id
      parents.set(key(id), {
        id,
        mobile: parent.mobile,
        children: f.after.map((c) => ({ id: key(c.newId ?? c.id), relation: parent.relation }))
      })
    }
  }
  const maxDeleteShare = Math.max(
    counts.deleteStudent / seedStudents.length,
    counts.deleteParent / seedParents.length
  )
  return {
    seed: { wecomDepartments: departments, students: seedStudents, parents: seedParents },
    studentsCsv: studentLines.join("\n") + "\n",
    parentsCsv: parentLines.join("\n") + "\n",
    classes: departments.filter((d) => d.type === 1).length,
    before: { students: seedStudents.length, parents: seedParents.length },
    expected: { students, parents },
    counts,
    upperCaseRows,
    childrenByNewId,
    maxDeleteShare
  }
}

// =============================================================================
// The check of the final directory
// =============================================================================

const sameClasses = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => {
  const x = [...new Set(a)].toSorted((p, q) => p - q)
  return x.length === b.length && x.every((d, i) => d === b[i])
}

const childSet = (children: ReadonlyArray<{ readonly id: string; readonly relation: string }>) =>
  children.map((c) => `${key(c.id)} ${c.relation}`).toSorted().join("|")

/**
 * Compares the sandbox's directory with the roster's expectation, user by user: every student (userid as spelt,
 * name, mobile, classes as a set) and every parent (userid, mobile, children as a set of userid and relation), nothing
 * missing and nothing else. Returns the number of differences (the first few are reported through `fail`).
 */
export const checkDirectory = (school: School, state: State, fail: (text: string) => void): number => {
  let differences = 0
  const differ = (text: string) => {
    if (differences++ < 8) fail(text)
  }
  const students = new Map<string, Student>(state.wecom.students.map((s) => [key(s.student_userid), s]))
  const parents = new Map<string, Parent>(state.wecom.parents.map((p) => [key(p.parent_userid), p]))
  for (const [k, e] of school.expected.students) {
    const s = students.get(k)
    if (s === undefined) differ(`student ${e.id} is missing from the sandbox`)
    else if (
      s.student_userid !== e.id || s.name !== e.name || (s.mobile ?? undefined) !== e.mobile ||
      !sameClasses(s.department, e.department)
    ) {
      differ(`student ${e.id}: expected ${JSON.stringify(e)}, the sandbox holds ${JSON.stringify(s)}`)
    }
  }
  for (const [k, s] of students) {
    if (!school.expected.students.has(k)) differ(`student ${s.student_userid} is in the sandbox, not in the roster`)
  }
  for (const [k, e] of school.expected.parents) {
    const p = parents.get(k)
    if (p === undefined) differ(`parent ${e.id} is missing from the sandbox`)
    else if (
      p.parent_userid !== e.id || p.mobile !== e.mobile ||
      childSet(p.children.map((c) => ({ id: c.student_userid, relation: c.relation }))) !== childSet(e.children)
    ) {
      differ(`parent ${e.id}: expected ${JSON.stringify(e)}, the sandbox holds ${JSON.stringify(p)}`)
    }
  }
  for (const [k, p] of parents) {
    if (!school.expected.parents.has(k)) differ(`parent ${p.parent_userid} is in the sandbox, not in the roster`)
  }
  if (differences > 8) fail(`… ${differences} differences between the sandbox and the roster in all`)
  return differences
}
