/**
 * What the sandboxes start with. `dirsync sandbox --seed FILE` loads a JSON directory (`classes`, `students`,
 * `parents`, `departments`); `--sandbox` runs pre-create every student, parent and class the input mentions, so a
 * user sees how their file behaves against a school that has them (an empty directory would only answer
 * "not found").
 *
 * @since 0.1.0
 */
import type * as FeishuMock from "@dirsync/feishu/testing"
import type * as WeComTesting from "@dirsync/wecom/testing"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as CliExit from "./CliExit.ts"
import * as Input from "./Input.ts"

const plausibleId = (u: unknown): u is string => typeof u === "string" && /^[0-9A-Za-z][0-9A-Za-z_\-@.]{0,63}$/.test(u)

const ensureStudent = (directory: WeComTesting.Directory, id: string, name?: unknown) => {
  if (directory.student(id) === undefined && directory.parent(id) === undefined) {
    directory.addStudent({ student_userid: id, name: typeof name === "string" && name.length > 0 ? name : id })
  }
}

/**
 * Pre-creates what the input file mentions: students (with their classes) for `students`, parents and their
 * children for `parents`.
 *
 * @since 0.1.0
 * @category seeding
 */
export const wecomFromInput = (directory: WeComTesting.Directory, file: string, layout: "students" | "parents") =>
  Input.read(file, layout).pipe(
    Stream.runForEach(({ value }) =>
      Effect.sync(() => {
        const v = value as Record<string, unknown>
        if (layout === "students") {
          if (!plausibleId(v["student_userid"])) return
          const classes = Array.isArray(v["department"])
            ? v["department"].filter((d): d is number => Number.isInteger(d))
            : []
          directory.addClasses(...classes)
          ensureStudent(directory, v["student_userid"], v["name"])
        } else {
          if (!plausibleId(v["parent_userid"])) return
          const children = Array.isArray(v["children"]) ? v["children"] : []
          for (const child of children) {
            const id = (child as Record<string, unknown> | null)?.["student_userid"]
            if (plausibleId(id)) ensureStudent(directory, id)
          }
          if (directory.parent(v["parent_userid"]) === undefined) {
            directory.addParent({ parent_userid: v["parent_userid"] })
          }
        }
      })
    ),
    Effect.mapError((e) => CliExit.usage(e.message))
  )

/**
 * The shape of a `--seed` file.
 *
 * @since 0.1.0
 * @category models
 */
export interface SeedFile {
  readonly classes?: ReadonlyArray<number>
  readonly students?: ReadonlyArray<
    { readonly student_userid: string; readonly name?: string; readonly department?: ReadonlyArray<number> }
  >
  readonly parents?: ReadonlyArray<{ readonly parent_userid: string; readonly mobile?: string }>
  readonly departments?: ReadonlyArray<FeishuMock.MockDepartment>
}

/**
 * Loads a `--seed` JSON file into both directories.
 *
 * @since 0.1.0
 * @category seeding
 */
export const fromFile = (path: string, wecom: WeComTesting.Directory, feishu: FeishuMock.Directory) =>
  Effect.try({
    try: () => {
      const seed = JSON.parse(readFileSync(path, "utf8")) as SeedFile
      wecom.addClasses(...(seed.classes ?? []))
      for (const s of seed.students ?? []) {
        wecom.addClasses(...(s.department ?? []))
        wecom.addStudent({
          student_userid: s.student_userid,
          name: s.name ?? s.student_userid,
          department: s.department ?? []
        })
      }
      for (const p of seed.parents ?? []) {
        wecom.addParent(p.mobile === undefined ? { parent_userid: p.parent_userid } : p)
      }
      feishu.addDepartments(seed.departments ?? [])
    },
    catch: (e) => CliExit.usage(`--seed ${path}: ${e instanceof Error ? e.message : String(e)}`)
  })

/**
 * The example files shipped with the CLI package (`packages/cli/examples`, linked as `examples/` at the repo root).
 *
 * @since 0.1.0
 * @category files
 */
export const examplesDir = (): string => join(import.meta.dirname, "..", "examples")

/**
 * @since 0.1.0
 * @category files
 */
export const tempDir = (): string => mkdtempSync(join(tmpdir(), "dirsync-demo-"))

/**
 * @since 0.1.0
 * @category files
 */
export const readText = (path: string): string => readFileSync(path, "utf8")
