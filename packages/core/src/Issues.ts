/**
 * Turns Schema decoding failures into the one-line, field-naming messages users see in reports and on the console:
 * `students[3].name has 33 characters; at most 32`.
 *
 * @since 0.1.0
 */
import * as SchemaIssue from "effect/SchemaIssue"

/**
 * A single problem with one field of one row.
 *
 * @since 0.1.0
 * @category models
 */
export interface FieldProblem {
  /** Dotted path of the field, e.g. `children[2].relation`; empty for the row itself. */
  readonly field: string
  readonly message: string
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Renders a Schema path as `a.b[2].c`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatPath = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>): string => {
  let out = ""
  for (const segment of path) {
    const key = typeof segment === "object" && segment !== null ? segment.key : segment
    if (typeof key === "number") out += `[${key}]`
    else out += out.length === 0 ? String(key) : `.${String(key)}`
  }
  return out
}

/**
 * The problems in a Schema issue, one per failing field.
 *
 * @since 0.1.0
 * @category formatting
 */
export const problems = (issue: SchemaIssue.Issue): ReadonlyArray<FieldProblem> =>
  formatter(issue).issues.map((i) => ({ field: formatPath(i.path ?? []), message: i.message }))

/**
 * One problem as a sentence: our own limit messages read `field is …` / `field has …`; anything else `field: …`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const sentence = (problem: FieldProblem): string => {
  if (problem.field.length === 0) return problem.message
  return /^[a-z]/.test(problem.message) ? `${problem.field} ${problem.message}` : `${problem.field}: ${problem.message}`
}

/**
 * All problems of an issue as one line.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (issue: SchemaIssue.Issue): string => problems(issue).map(sentence).join("; ")
