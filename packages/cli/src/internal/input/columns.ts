/**
 * Column names → fields, for CSV and .xlsx headers: the field names themselves, built-in aliases (the headers of
 * WeCom's 家校通讯录 import template and common English variants), and the user's `--map`. Names are compared
 * without case, white space, `_` or `-`, after NFKC (so full-width letters match too).
 *
 * Plain Node, no Effect: the CSV reader runs it in a worker thread.
 *
 * @internal
 */
import type { Layout } from "../csv.ts"
import { count } from "../text.ts"

/**
 * The columns a failures file adds (`internal/failures.ts`). Every reader skips them, so a failures file, fixed, is
 * fed back in as it is.
 */
export const errorColumns: ReadonlyArray<string> = ["error_field", "error_code", "error_message"]

/**
 * The outcomes a failures file marks in `error_code` as unknown: the vendor may have applied the row (or an earlier
 * run sent it and it could not be checked). A row fed back while its `error_code` still says so is refused
 * ({@link heldBack}): sent again blindly, a rename fails or a Feishu `batch_add` makes a second department.
 */
export const unknownOutcomeCodes: ReadonlyArray<string> = ["OutcomeUnknown", "Unverified"]

/**
 * In a failures file (a header with all three {@link errorColumns}), the pseudo-field of the `error_code` column: the
 * row mappers take it out of the row and refuse the row when it names an unknown outcome ({@link heldBack}).
 */
export const ERROR_CODE = "error_code"

/**
 * Takes the failures file's `error_code` out of a row's cells: the problem that refuses the row when it names an
 * unknown outcome, else undefined.
 */
export const heldBack = (cells: Record<string, unknown>): { field: string; message: string } | undefined => {
  const code = cells[ERROR_CODE]
  if (code === undefined) return undefined
  delete cells[ERROR_CODE]
  const reason = typeof code === "string" ? code.trim().split(/\s/)[0]! : ""
  return unknownOutcomeCodes.includes(reason)
    ? {
      field: ERROR_CODE,
      message:
        `says ${reason}: an earlier run sent this row and may have applied it; check it at the vendor, then clear the error_code cell to send it again`
    }
    : undefined
}

/**
 * A failures file's cell as written: one that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`,
 * `@`, a tab or a carriage return: OWASP's list) gets a `'` before it, and so does one that starts with `'`, so that
 * {@link unescapeCell} gives back exactly the cell.
 */
export const escapeCell = (cell: string): string => /^[=+\-@\t\r']/.test(cell) ? `'${cell}` : cell

/** A failures file's cell as read: the `'` {@link escapeCell} put before it taken off. */
export const unescapeCell = (cell: string): string => cell.startsWith("'") ? cell.slice(1) : cell

/** How a header's names become fields; plain data, so that it travels to the CSV reader's worker thread. */
export interface Mapping {
  /** Normalized column name → field, from `--map`; wins over the built-in aliases. */
  readonly map: Readonly<Record<string, string>>
  /** Normalized column name → the column name as `--map` gave it, for messages. */
  readonly names?: Readonly<Record<string, string>> | undefined
  /** Columns that are no field are skipped (named in one warning) instead of refusing the file. */
  readonly ignoreExtra: boolean
}

export const defaultMapping: Mapping = { map: {}, ignoreExtra: false }

/**
 * `Student ID`, `student_userid`, `ＳｔｕｄｅｎｔＩＤ` → `studentid`, `studentuserid`, `studentid`. Invisible
 * characters a copy from a web page or a spreadsheet leaves in a title (zero-width space and joiners, word joiner,
 * soft hyphen, a byte order mark) are no part of the name.
 */
export const normalize = (name: string): string =>
  name.normalize("NFKC").toLowerCase().replace(/[\s_\-\u00ad\u200b-\u200d\u2060\ufeff]+/g, "")

const fields: { readonly [L in Layout]: ReadonlyArray<string> } = {
  students: ["student_userid", "new_student_userid", "name", "mobile", "department"],
  parents: ["parent_userid", "new_parent_userid", "mobile", "student_userid", "relation"],
  departments: ["id", "name", "parent_id", "leader_user_id", "leader_open_id", "create_group_chat"]
}

const mobile = [
  "手机",
  "手机号",
  "手机号码",
  "电话",
  "联系电话",
  "联系方式",
  "mobile",
  "phone",
  "mobile phone",
  "phone number"
]

/**
 * Built-in aliases per layout and field. The Chinese ones are the column titles of WeCom's school-contacts import
 * template and what school exports call the same things.
 */
export const aliases: { readonly [L in Layout]: Readonly<Record<string, ReadonlyArray<string>>> } = {
  students: {
    student_userid: [
      "学号",
      "学生编号",
      "学生账号",
      "学生userid",
      "学生id",
      "student id",
      "student",
      "user id",
      "userid"
    ],
    new_student_userid: ["新学号", "新学生编号", "新学生账号", "new student id", "new user id"],
    name: ["姓名", "学生姓名", "名字", "name", "student name", "full name"],
    mobile,
    department: [
      "班级",
      "班级id",
      "所在班级",
      "班级编号",
      "部门",
      "class",
      "classes",
      "class id",
      "class ids",
      "department"
    ]
  },
  parents: {
    parent_userid: ["家长账号", "家长编号", "家长userid", "家长id", "parent id", "parent", "user id", "userid"],
    new_parent_userid: ["新家长账号", "新家长编号", "new parent id", "new user id"],
    mobile: [...mobile, "家长手机", "家长手机号"],
    student_userid: ["学号", "学生编号", "学生账号", "学生userid", "学生id", "student id", "student"],
    relation: ["关系", "与学生关系", "亲属关系", "家长关系", "relation", "relationship"]
  },
  departments: {
    id: ["部门id", "部门编号", "department id", "dept id"],
    name: ["部门名称", "名称", "部门", "name", "department name", "department"],
    parent_id: ["上级部门id", "上级部门", "父部门id", "parent id", "parent department id", "parent"],
    leader_user_id: ["负责人id", "负责人", "部门负责人", "leader user id", "leader"],
    leader_open_id: ["负责人openid", "leader open id"],
    create_group_chat: ["创建部门群", "是否创建部门群", "部门群", "create group chat", "group chat"]
  }
}

/** Normalized name → field for one layout: field names and built-in aliases. */
const builtIn: { readonly [L in Layout]: ReadonlyMap<string, string> } = (() => {
  const out = {} as { [L in Layout]: Map<string, string> }
  for (const layout of Object.keys(fields) as Array<Layout>) {
    const m = new Map<string, string>()
    for (const field of fields[layout]) m.set(normalize(field), field)
    for (const [field, names] of Object.entries(aliases[layout])) {
      for (const name of names) if (!m.has(normalize(name))) m.set(normalize(name), field)
    }
    out[layout] = m
  }
  return out
})()

const errorKeys: ReadonlySet<string> = new Set(errorColumns.map(normalize))

/** Whether a column or JSON key is one of the failures file's error columns, which every reader skips. */
export const isErrorColumn = (name: string): boolean => errorKeys.has(normalize(name))

/** Edit distance counting a swap of two neighbours as one edit (`nmae` → `name`), for "did you mean". */
const distance = (a: string, b: string): number => {
  const d: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) => [i])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/** The field whose name or alias is closest to `name`, if any is close enough to be a slip of the keyboard. */
export const closestField = (layout: Layout, name: string): string | undefined => {
  const n = normalize(name)
  let best: { field: string; d: number } | undefined
  for (const [alias, field] of builtIn[layout]) {
    const d = distance(n, alias)
    if (best === undefined || d < best.d) best = { field, d }
  }
  return best !== undefined && best.d <= Math.max(1, Math.floor(n.length / 3)) ? best.field : undefined
}

/** The fields of a layout, for messages. */
export const fieldsOf = (layout: Layout): ReadonlyArray<string> => fields[layout]

/**
 * `--map 'name=姓名,student_userid=学号'` → normalized column → field, or the one-line reason it cannot be read
 * (naming the part and, for an unknown field, the closest one).
 */
export const parseMap = (
  layout: Layout,
  text: string
):
  | { readonly map: Record<string, string>; readonly names: Record<string, string> }
  | { readonly error: string } =>
{
  const map: Record<string, string> = {}
  const names: Record<string, string> = {}
  const known = fields[layout]
  const parts = text.split(",")
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p]!
    if (part.trim().length === 0) continue
    // The field name never holds "=": everything after the first one is the column's name, "=" included.
    const eq = part.indexOf("=")
    const field = eq < 0 ? "" : part.slice(0, eq).trim()
    const column = eq < 0 ? "" : part.slice(eq + 1).trim()
    if (eq < 0 || field.length === 0 || column.length === 0) {
      // `--map 'name=Last, First'`: there is no quoting, a comma always ends a pair.
      const comma = eq < 0 && p > 0
        ? `; --map splits at every comma and has no quoting, so a column whose name holds a comma cannot be named: rename the column in the file`
        : ""
      return {
        error: `--map: ${
          JSON.stringify(part.trim())
        } is not field=Column, e.g. --map 'name=姓名,student_userid=学号'${comma}`
      }
    }
    if (!known.includes(field)) {
      const near = closestField(layout, field)
      return {
        error: `--map: ${JSON.stringify(field)} is not a field of ${layout}${
          near === undefined ? "" : `; did you mean "${near}"?`
        } (fields: ${known.join(", ")})`
      }
    }
    map[normalize(column)] = field
    names[normalize(column)] = column
  }
  return { map, names }
}

/** A header resolved: the field of each column ("" for a skipped one) and the columns skipped for being no field. */
export interface Resolved {
  readonly columns: ReadonlyArray<string>
  readonly extra: ReadonlyArray<string>
  /**
   * The header has all three error columns: a failures file, whose cells carry `escapeCell`'s `'` and whose
   * `error_code` column is {@link ERROR_CODE}.
   */
  readonly failures: boolean
}

const quote = (names: ReadonlyArray<string>) => names.map((n) => `"${n}"`).join(", ")

/** At most `max` names quoted, then "… and N more": a header of 16,384 columns stays one readable line. */
export const listed = (names: ReadonlyArray<string>, max = 10): string =>
  names.length <= max
    ? names.map((n) => JSON.stringify(n)).join(", ")
    : `${names.slice(0, max).map((n) => JSON.stringify(n)).join(", ")} … and ${count(names.length - max)} more`

/**
 * A header's cells → the field of each column, or the one-line reason the header is refused. Empty cells at the end
 * (spreadsheet exports add them) and the failures file's error columns are skipped; an unnamed column before a named
 * one is refused, as are two columns of one field and (unless `ignoreExtra`) a column that is no field.
 */
export const resolve = (
  layout: Layout,
  header: ReadonlyArray<string>,
  mapping: Mapping
): Resolved | { readonly problem: string } => {
  const expected = `expected columns: ${fields[layout].join(",")}`
  let last = header.length
  while (last > 0 && header[last - 1]!.trim().length === 0) last--
  const keys = header.map((name) => normalize(name.trim()))
  const errorNames = new Set(keys.filter((k, i) => i < last && errorKeys.has(k)))
  const failures = errorNames.size === errorKeys.size
  // A field --map gives a column of this header: a column that is the field only by a built-in alias is not it.
  const mapped = new Set(keys.flatMap((k, i) => i < last && mapping.map[k] !== undefined ? [mapping.map[k]!] : []))
  const columns: Array<string> = []
  const extra: Array<string> = []
  const unknown: Array<string> = []
  const byField = new Map<string, Array<string>>()
  for (let i = 0; i < header.length; i++) {
    const name = header[i]!.trim()
    if (i >= last) {
      columns.push("")
      continue
    }
    if (errorKeys.has(keys[i]!)) {
      columns.push(failures && keys[i] === normalize(ERROR_CODE) ? ERROR_CODE : "")
      // In a file that is no failures file, an error column skipped is news: the warning names it.
      if (!failures) extra.push(name)
      continue
    }
    if (name.length === 0) return { problem: `column ${i + 1} of the header has no name; ${expected}` }
    const key = keys[i]!
    const own = mapping.map[key]
    const alias = builtIn[layout].get(key)
    const field = own ?? (alias !== undefined && mapped.has(alias) ? undefined : alias)
    if (field === undefined) {
      columns.push("") // Displaced by --map, which says which column is the field: skipped whatever --ignore-extra-columns says.
      ;(mapping.ignoreExtra || alias !== undefined ? extra : unknown).push(name)
      continue
    }
    columns.push(field)
    const same = byField.get(field)
    if (same === undefined) byField.set(field, [name])
    else same.push(name)
  }
  if (last === 1 && /[;\t]/.test(header[0]!)) {
    return {
      problem: `the header is one column "${
        header[0]!.trim()
      }": the file seems to use ";" or tabs between values; dirsync reads comma-separated files (${expected})`
    }
  }
  const present = new Set(keys.slice(0, last))
  const absent = Object.keys(mapping.map).filter((k) => !present.has(k))
  if (absent.length > 0) {
    const named = absent.map((k) => `"${mapping.names?.[k] ?? k}" (for ${mapping.map[k]})`).join(", ")
    return {
      problem: `--map names column${
        absent.length > 1 ? "s" : ""
      } ${named}, which the header does not have; its columns: ${listed(header.slice(0, last).map((n) => n.trim()))}`
    }
  }
  for (const [field, names] of byField) {
    if (names.length < 2) continue
    const same = new Set(names.map((n) => n.toLowerCase()))
    return {
      problem: same.size === 1
        ? `the header names column ${quote([names[0]!.toLowerCase()])} more than once`
        : `columns ${quote(names)} are all the field "${field}"; keep one of them (or say which with --map '${field}=${
          names[0]
        }')`
    }
  }
  if (unknown.length > 0) {
    const described = unknown.map((name) => {
      const near = closestField(layout, name)
      return `${JSON.stringify(name)}${near === undefined ? "" : ` (did you mean "${near}"?)`}`
    })
    const shown = described.length <= 10
      ? described.join(", ")
      : `${described.slice(0, 10).join(", ")} … and ${count(described.length - 10)} more`
    return {
      problem: `unknown column${
        unknown.length > 1 ? "s" : ""
      } ${shown} in the header; ${expected}. Name the field a column holds with --map 'field=Column', or skip such columns with --ignore-extra-columns`
    }
  }
  const missing = layoutRequired[layout].filter((f) => !byField.has(f))
  if (missing.length > 0) {
    return {
      problem: `missing required column${missing.length > 1 ? "s" : ""} ${quote(missing)} in the header; ${expected}`
    }
  }
  return { columns, extra, failures }
}

const layoutRequired: { readonly [L in Layout]: ReadonlyArray<string> } = {
  students: ["student_userid"],
  parents: ["parent_userid"],
  departments: ["name", "parent_id"]
}
