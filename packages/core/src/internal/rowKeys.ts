/**
 * Keys a row Schema does not know. Effect's decoder drops them (`onExcessProperty: "ignore"`), so a misspelt field
 * (`nmae`) would vanish and its row be sent without it; `onExcessProperty: "error"` would catch it but takes every row
 * off the Schema's fast path (0.9 → 1.6 µs a row). This walks the Schema's encoded side once, up front, and checks a
 * value's keys against it: a few `Set` lookups for a clean row, and a message naming the key (with the closest known
 * field) for the rare row that has one.
 *
 * @since 0.3.0
 */
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import type { FieldProblem } from "../Issues.ts"

/** One node's check: `any` says whether the value holds an unknown key (no allocation); `report` says which. */
interface Node {
  readonly any: (value: unknown) => boolean
  readonly report: (value: unknown, path: string, out: Array<FieldProblem>) => void
}

/**
 * The unknown-key check of a row Schema, or `undefined` when it declares no object whose keys can be checked (an
 * open record, a class instance, a recursive Schema: nothing is rejected there that the Schema itself accepts).
 *
 * @since 0.3.0
 * @category constructors
 */
export interface UnknownKeys {
  /** Whether the value holds a key its Schema does not declare, at any depth. */
  readonly any: (value: unknown) => boolean
  /** One problem per unknown key, at its dotted path, suggesting the closest declared key when one is near. */
  readonly problems: (value: unknown) => Array<FieldProblem>
}

/**
 * @since 0.3.0
 * @category constructors
 */
export const unknownKeys = (schema: Schema.Top): UnknownKeys | undefined => {
  const node = compile(SchemaAST.toEncoded(schema.ast))
  if (node === undefined) return undefined
  return {
    any: node.any,
    problems: (value) => {
      const out: Array<FieldProblem> = []
      node.report(value, "", out)
      return out
    }
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const join = (path: string, key: string) => (path.length === 0 ? key : `${path}.${key}`)

const compile = (ast: SchemaAST.AST): Node | undefined => {
  switch (ast._tag) {
    case "Objects":
      return objects(ast)
    case "Arrays":
      return arrays(ast)
    case "Union": {
      // `optional(X)` is a union of X and undefined: X's check applies. Two members with checks (two object shapes)
      // leave the key set ambiguous; the Schema alone decides then.
      const nodes = ast.types.map(compile).filter((n) => n !== undefined)
      return nodes.length === 1 ? nodes[0] : undefined
    }
    default:
      return undefined
  }
}

const objects = (ast: SchemaAST.Objects): Node | undefined => {
  const names = ast.propertySignatures.map((ps) => ps.name).filter((n): n is string => typeof n === "string")
  const children: Array<readonly [string, Node]> = []
  for (const ps of ast.propertySignatures) {
    const node = typeof ps.name === "string" ? compile(ps.type) : undefined
    if (node !== undefined) children.push([ps.name as string, node])
  }
  // An index signature admits keys by pattern: only the declared properties' values are checked.
  const closed = ast.indexSignatures.length === 0
  if (!closed && children.length === 0) return undefined
  const known: ReadonlySet<string> = new Set(names)
  const expected = names.join(", ")
  return {
    any: (value) => {
      if (!isRecord(value)) return false
      if (closed) { for (const key in value) if (!known.has(key) && Object.hasOwn(value, key)) return true }
      for (let i = 0; i < children.length; i++) {
        const [name, node] = children[i]!
        const child = value[name]
        if (child !== undefined && node.any(child)) return true
      }
      return false
    },
    report: (value, path, out) => {
      if (!isRecord(value)) return
      if (closed) {
        for (const key of Object.keys(value)) {
          if (known.has(key)) continue
          const near = closest(key, names)
          out.push({
            field: join(path, shown(key)),
            message: `is not a field of ${path.length === 0 ? "the row" : path}${
              near === undefined ? "" : ` (did you mean ${near}?)`
            }; expected one of ${expected}`
          })
        }
      }
      for (const [name, node] of children) {
        const child = value[name]
        if (child !== undefined) node.report(child, join(path, name), out)
      }
    }
  }
}

const arrays = (ast: SchemaAST.Arrays): Node | undefined => {
  const elements = ast.elements.map(compile)
  const rest = ast.rest.length > 0 ? compile(ast.rest[0]!) : undefined
  if (rest === undefined && elements.every((e) => e === undefined)) return undefined
  const at = (i: number) => (i < elements.length ? elements[i] : rest)
  return {
    any: (value) => {
      if (!Array.isArray(value)) return false
      for (let i = 0; i < value.length; i++) if (at(i)?.any(value[i]) === true) return true
      return false
    },
    report: (value, path, out) => {
      if (!Array.isArray(value)) return
      for (let i = 0; i < value.length; i++) at(i)?.report(value[i], `${path}[${i}]`, out)
    }
  }
}

/** Keys longer than any field name are no typo of one: cut in messages, never compared (the cost is quadratic). */
const maxKey = 64

const shown = (key: string) => (key.length > maxKey ? `${key.slice(0, maxKey)}…` : key)

/** The declared key nearest to `key` (at most 2 edits, a swap of neighbours counting as one), if any. */
const closest = (key: string, names: ReadonlyArray<string>): string | undefined => {
  if (key.length > maxKey) return undefined
  let best: string | undefined
  let bestDistance = Math.min(2, key.length - 1)
  const lower = key.toLowerCase()
  for (const name of names) {
    const d = distance(lower, name.toLowerCase())
    if (d <= bestDistance && (best === undefined || d < bestDistance)) {
      best = name
      bestDistance = d
    }
  }
  return best
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
const distance = (a: string, b: string): number => {
  const rows = a.length + 1
  const cols = b.length + 1
  const d = new Uint16Array(rows * cols)
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1)
      }
      d[i * cols + j] = v
    }
  }
  return d[rows * cols - 1]!
}
