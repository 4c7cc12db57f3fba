/**
 * The student roster used by drills D1 and D2: a seed for the sandbox (every student as it is before the run), the
 * input CSV (name, class and mobile changes, some renames, some ids in another letter case), and the check of the
 * sandbox's final state against what each row should have done.
 */
import type { ReportItem, State, Student } from "./lib.ts"

export const CLASSES = 40

export interface Row {
  readonly row: number
  readonly i: number
  /** The id the student has before the run. */
  readonly base: string
  /** The id as the input spells it (sometimes in another case). */
  readonly id: string
  readonly newId: string | undefined
  readonly name: string
  readonly mobile: string | undefined
  readonly department: ReadonlyArray<number>
}

export interface Roster {
  readonly rows: ReadonlyArray<Row>
  readonly extras: ReadonlyArray<string>
  readonly seed: unknown
  readonly csv: string
  readonly renames: number
}

const oldName = (i: number) => `旧名${i}`
const oldClasses = (i: number) => [1 + (i % CLASSES)]

/**
 * `n` input rows; one in `renameEvery` renames its student; `extras` students are seeded but not in the input (they
 * must not change).
 */
export const makeRoster = (n: number, options: { readonly renameEvery: number; readonly extras: number }): Roster => {
  const rows: Array<Row> = []
  const seedStudents: Array<{ student_userid: string; name: string; department: ReadonlyArray<number> }> = []
  const lines: Array<string> = ["student_userid,new_student_userid,name,mobile,department"]
  let renames = 0
  for (let i = 0; i < n; i++) {
    const base = `stu${String(i).padStart(6, "0")}`
    seedStudents.push({ student_userid: base, name: oldName(i), department: oldClasses(i) })
    const id = i % 101 === 3 ? base.toUpperCase() : base
    const newId = i % options.renameEvery === 7 ? `new-${i}` : undefined
    if (newId !== undefined) renames++
    const name = i % 13 === 0 ? `学生${i}🌟` : `新名字${i}`
    const mobile = i % 3 === 0 ? `139${String(i).padStart(8, "0")}` : undefined
    const a = 1 + ((i * 7) % CLASSES)
    const b = 1 + ((i * 11 + 1) % CLASSES)
    const department = i % 5 === 0 && a !== b ? [a, b] : [1 + ((i * 3) % CLASSES)]
    rows.push({ row: i + 1, i, base, id, newId, name, mobile, department })
    lines.push(`${id},${newId ?? ""},${name},${mobile ?? ""},${department.join(";")}`)
  }
  const extras: Array<string> = []
  for (let j = 0; j < options.extras; j++) {
    const id = `ext${String(j).padStart(6, "0")}`
    extras.push(id)
    seedStudents.push({ student_userid: id, name: `不动${j}`, department: [1 + (j % CLASSES)] })
  }
  const classes = Array.from({ length: CLASSES }, (_, k) => k + 1)
  return {
    rows,
    extras,
    seed: { classes, students: seedStudents, parents: [], departments: [] },
    csv: lines.join("\n") + "\n",
    renames
  }
}

const sameList = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
  a.length === b.length && a.every((x, k) => x === b[k])

const matches = (
  s: Student | undefined,
  e: { id: string; name: string; mobile: string | undefined; department: ReadonlyArray<number>; renamed: boolean }
) =>
  s !== undefined && s.student_userid.toLowerCase() === e.id.toLowerCase() && s.name === e.name &&
  (s.mobile ?? undefined) === e.mobile && sameList(s.department, e.department) && s.renamed === e.renamed

export interface StateCheck {
  /** Rows whose student shows the update. */
  readonly updated: number
  /** Failed rows whose student shows the update anyway (the vendor applied a request whose reply was lost). */
  readonly failedButApplied: number
  readonly renamesApplied: number
}

/**
 * Compares the sandbox's final state with the roster. `items` gives each row's reported status; a row reported
 * `applied` must show its update, a `failed` row must show either its update or its old state (all or nothing),
 * students outside the input must be untouched, nothing else may exist, and no id may have been renamed twice.
 */
export const checkState = (
  roster: Roster,
  state: State,
  items: ReadonlyMap<number, ReportItem>,
  fail: (text: string) => void
): StateCheck => {
  const byKey = new Map<string, Student>()
  for (const s of state.wecom.students) byKey.set(s.student_userid.toLowerCase(), s)
  const accounted = new Set<string>()
  let updated = 0
  let failedButApplied = 0
  const problems: Array<string> = []
  let problemCount = 0
  const problem = (text: string) => {
    if (problemCount++ < 10) problems.push(text)
  }
  for (const r of roster.rows) {
    const newKey = (r.newId ?? r.base).toLowerCase()
    const oldKey = r.base.toLowerCase()
    const isNew = matches(byKey.get(newKey), {
      id: r.newId ?? r.base,
      name: r.name,
      mobile: r.mobile,
      department: r.department,
      renamed: r.newId !== undefined
    }) && (r.newId === undefined || !byKey.has(oldKey))
    const isOld = matches(byKey.get(oldKey), {
      id: r.base,
      name: oldName(r.i),
      mobile: undefined,
      department: oldClasses(r.i),
      renamed: false
    }) && (r.newId === undefined || !byKey.has(r.newId.toLowerCase()))
    const item = items.get(r.row)
    const status = item?.status
    if (isNew) updated++
    if (status === "applied" && !isNew) {
      problem(`row ${r.row} (${r.id}) is reported applied but the sandbox holds ${JSON.stringify(byKey.get(newKey))}`)
    } else if (status === "failed" && !isNew && !isOld) {
      problem(`row ${r.row} (${r.id}) failed and the sandbox holds neither its old nor its new state`)
    } else if (status === "failed" && isNew && r.newId !== undefined) {
      // An update whose reply was lost may have applied: the client cannot know, the report's "failed" is honest.
      // A rename it can know: school/user/get shows it, and SchoolContacts promises "a rename that already happened
      // is reported applied". A rename reported failed that did happen misleads the user (re-running the row then
      // fails with errcode 1, the old id being gone).
      failedButApplied++
      problem(
        `row ${r.row} (${r.id} → ${r.newId}) is reported failed (${item?.reason}: ${item?.message}) ` +
          `but the rename was applied`
      )
    } else if (status === "failed" && isNew) failedButApplied++
    else if (status !== "applied" && status !== "failed") problem(`row ${r.row} has status ${status}`)
    accounted.add(isNew ? newKey : oldKey)
  }
  for (const [k, id] of roster.extras.entries()) {
    const s = byKey.get(id.toLowerCase())
    if (!matches(s, { id, name: `不动${k}`, mobile: undefined, department: [1 + (k % CLASSES)], renamed: false })) {
      problem(`student ${id}, not in the input, changed: ${JSON.stringify(s)}`)
    }
    accounted.add(id.toLowerCase())
  }
  const unexpected = [...byKey.keys()].filter((k) => !accounted.has(k))
  if (unexpected.length > 0) problem(`${unexpected.length} unexpected student(s) in the sandbox, e.g. ${unexpected[0]}`)
  if (state.wecom.students.length !== roster.rows.length + roster.extras.length) {
    problem(
      `the sandbox holds ${state.wecom.students.length} students, expected ${roster.rows.length + roster.extras.length}`
    )
  }
  if (state.wecom.parents.length !== 0) problem(`the sandbox holds ${state.wecom.parents.length} parents, expected 0`)
  if (!sameList(state.wecom.classes.toSorted((a, b) => a - b), Array.from({ length: CLASSES }, (_, k) => k + 1))) {
    problem(`the classes changed: ${JSON.stringify(state.wecom.classes)}`)
  }
  // Renames: at most one per id, and exactly the renames the final state shows.
  const twice = Object.entries(state.wecom.renames).filter(([, n]) => n > 1)
  if (twice.length > 0) problem(`${twice.length} id(s) renamed more than once, e.g. ${twice[0]![0]} ×${twice[0]![1]}`)
  const renamesApplied = Object.keys(state.wecom.renames).length
  const shown = roster.rows.filter((r) => r.newId !== undefined && byKey.has(r.newId.toLowerCase())).length
  if (renamesApplied !== shown) problem(`the sandbox counted ${renamesApplied} renames but shows ${shown}`)
  for (const p of problems) fail(p)
  if (problemCount > 10) fail(`… and ${problemCount - 10} more state differences`)
  return { updated, failedButApplied, renamesApplied }
}
