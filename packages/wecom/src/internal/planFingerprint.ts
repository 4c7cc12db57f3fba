/**
 * SHA-256 digests of a `SchoolState.State` for `SchoolPlan`: canonical (sorted, fixed field order, one JSON array per
 * record and a newline between records), so the order WeCom lists things in never changes a digest.
 *
 * @internal
 */
import { Limit } from "@dirsync/core"
import { createHash } from "node:crypto"
import type * as SchoolState from "../SchoolState.ts"

const key = Limit.idKey

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Sorted by lower-cased userid, then by userid: each key computed once, not once per comparison (80,000 users are
 * sorted this way for a state's digest).
 */
export const byUserid = <A>(items: ReadonlyArray<A>, id: (a: A) => string): Array<A> =>
  items
    .map((item) => ({ k: key(id(item)), id: id(item), item }))
    .toSorted((a, b) => compare(a.k, b.k) || compare(a.id, b.id))
    .map((e) => e.item)

const numbers = (ids: ReadonlyArray<number>) => [...new Set(ids)].toSorted((a, b) => a - b)

const studentRecord = (s: SchoolState.Student) => [s.student_userid, s.name, s.mobile ?? null, numbers(s.department)]

const childRecords = (children: ReadonlyArray<SchoolState.Child>) =>
  byUserid(children, (c) => c.student_userid).map((c) => [c.student_userid, c.relation])

const departmentRecords = (state: SchoolState.State) =>
  state.departments.toSorted((a, b) => a.id - b.id).map((d) => [d.id, d.parentid, d.name, d.type])

export const departments = (state: SchoolState.State): string => {
  const hash = createHash("sha256")
  for (const d of departmentRecords(state)) hash.update(JSON.stringify(d) + "\n")
  return hash.digest("hex")
}

export const state = (state: SchoolState.State): string => {
  const hash = createHash("sha256")
  // Sections are tagged so a record cannot move from one section to another without changing the digest.
  hash.update("departments\n")
  for (const d of departmentRecords(state)) hash.update(JSON.stringify(d) + "\n")
  hash.update("students\n")
  for (const s of byUserid(state.students, (s) => s.student_userid)) {
    hash.update(JSON.stringify(studentRecord(s)) + "\n")
  }
  hash.update("parents\n")
  for (const p of byUserid(state.parents, (p) => p.parent_userid)) {
    hash.update(JSON.stringify([p.parent_userid, p.mobile ?? null, childRecords(p.children)]) + "\n")
  }
  return hash.digest("hex")
}

/**
 * Per class: its students, each with the links of their parents to them (parent id, relation, mobile), which is what
 * one `school/user/list?department_id=` read returns. A parent's other children are not part of it, so a state read
 * from some classes only gives the same digests for those classes as the whole state.
 */
export const classes = (state: SchoolState.State, ids: Iterable<number>): Record<string, string> => {
  const wanted = new Set(ids)
  const members = new Map<number, Array<SchoolState.Student>>()
  for (const id of wanted) members.set(id, [])
  for (const s of state.students) {
    for (const id of new Set(s.department)) members.get(id)?.push(s)
  }
  const links = new Map<string, Array<[string, string, string | null]>>()
  for (const p of state.parents) {
    for (const c of p.children) {
      const k = key(c.student_userid)
      const link: [string, string, string | null] = [p.parent_userid, c.relation, p.mobile ?? null]
      const list = links.get(k)
      if (list === undefined) links.set(k, [link])
      else list.push(link)
    }
  }
  const out: Record<string, string> = {}
  for (const id of [...wanted].toSorted((a, b) => a - b)) {
    const hash = createHash("sha256")
    for (const s of byUserid(members.get(id)!, (s) => s.student_userid)) {
      const parents = (links.get(key(s.student_userid)) ?? []).toSorted((a, b) =>
        compare(key(a[0]), key(b[0])) || compare(a[0], b[0]) || compare(a[1], b[1])
      )
      hash.update(JSON.stringify([...studentRecord(s), parents]) + "\n")
    }
    out[id] = hash.digest("hex")
  }
  return out
}
