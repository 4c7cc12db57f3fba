/**
 * The sandboxes behind `--sandbox` and `dirsync sandbox`: what they start with, and the loopback HTTP server that
 * serves them.
 *
 * - Seeding. `dirsync sandbox --seed FILE` loads a JSON directory (`classes`, `students`, `parents` with their
 *   `children`, `wecomDepartments` for WeCom's school tree, `departments` for Feishu's),
 *   decoded with a Schema so a mistake is named, and `--demo-seed` starts with {@link demoSeed}, the school the
 *   examples are written for; `--sandbox` runs pre-create every student, parent and class the input mentions, so a
 *   user sees how their file behaves against a school that has them (an empty directory would only answer "not
 *   found").
 * - Serving. The WeCom and Feishu in-memory directories (the same request handlers the mock layers use) on
 *   127.0.0.1, so the real CLI and the real clients talk real HTTP to them. node:http is used directly rather than
 *   effect's HttpServer because the "dropped connection", "cut" and "truncate" faults need the raw socket (destroyed
 *   without a response, or in the middle of one), and a "huge" reply is written as the client reads it.
 *
 * @since 0.2.0
 */
import { type Endpoint, Issues } from "@dirsync/core"
import type { MockTransport } from "@dirsync/core/testing"
import type * as FeishuTesting from "@dirsync/feishu/testing"
import type * as WeComTesting from "@dirsync/wecom/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FileSystem from "effect/FileSystem"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Http from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import * as CliExit from "./CliExit.ts"
import * as Input from "./Input.ts"
import * as Files from "./internal/files.ts"

// Required, not imported: importing node:http as an ES module evaluates its lazy WebSocket exports, which loads node's
// own undici, about 30 ms of every command that merely can seed a sandbox (docs/PERFORMANCE.md, "Issue 16").
const http = createRequire(import.meta.url)("node:http") as typeof Http

// =============================================================================
// Seeding
// =============================================================================

const plausibleId = (u: unknown): u is string => typeof u === "string" && /^[0-9A-Za-z][0-9A-Za-z_\-@.]{0,63}$/.test(u)

const ensureStudent = (directory: WeComTesting.Directory, id: string, name?: unknown) => {
  if (directory.student(id) === undefined && directory.parent(id) === undefined) {
    directory.addStudent({ student_userid: id, name: typeof name === "string" && name.length > 0 ? name : id })
  }
}

/**
 * Pre-creates what the input mentions: students (with their classes) for `students`, parents and their children for
 * `parents`. Takes the run's own rows (`Input.read`), so seeding is the run's one read of the file and the run
 * then sends what the seed saw.
 *
 * @since 0.2.0
 * @category seeding
 */
export const wecomFromInput = (
  directory: WeComTesting.Directory,
  input: Stream.Stream<Endpoint.SourceRow, Input.InputError>,
  layout: "students" | "parents"
) =>
  input.pipe(
    Stream.runForEach(({ value }) =>
      Effect.sync(() => {
        if (typeof value !== "object" || value === null) return // not an item: nothing to seed
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

const Optional = <S extends Schema.Top>(schema: S) => Schema.optionalKey(schema)
const ClassIds = Schema.Array(Schema.Int)

/**
 * The shape of a `--seed` file. Unknown keys are ignored.
 *
 * @since 0.2.0
 * @category models
 */
export const SeedFile = Schema.Struct({
  classes: Optional(ClassIds),
  students: Optional(Schema.Array(Schema.Struct({
    student_userid: Schema.String,
    name: Optional(Schema.String),
    department: Optional(ClassIds)
  }))),
  parents: Optional(Schema.Array(Schema.Struct({
    parent_userid: Schema.String,
    mobile: Optional(Schema.String),
    // Issue 18's reads embed parents in their children's classes: a parent needs its children to be read back.
    children: Optional(Schema.Array(Schema.Struct({ student_userid: Schema.String, relation: Schema.String })))
  }))),
  // WeCom's school tree (school 5, grade 2, class 1…) for `school/department/list`; `departments` are Feishu's.
  wecomDepartments: Optional(Schema.Array(Schema.Struct({
    id: Schema.Int,
    parentid: Schema.Int,
    name: Schema.String,
    type: Schema.Int
  }))),
  departments: Optional(Schema.Array(Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    parent_id: Schema.String,
    leader_user_id: Optional(Schema.String),
    leader_open_id: Optional(Schema.String),
    chat_id: Optional(Schema.String),
    // Users in the department: the emulator keeps none, and a department with members refuses a v3 delete.
    member_count: Optional(Schema.Int)
  })))
})

/**
 * @since 0.2.0
 * @category models
 */
export type SeedFile = typeof SeedFile.Type

const decodeSeed = Schema.decodeUnknownEffect(Schema.fromJsonString(SeedFile))

/**
 * Loads the text of a seed file (named `source` in messages) into both directories. A wrong shape is a usage error
 * naming the file and the field.
 *
 * @since 0.2.0
 * @category seeding
 */
export const load = Effect.fnUntraced(function*(
  text: string,
  source: string,
  wecom: WeComTesting.Directory,
  feishu: FeishuTesting.Directory
) {
  const seed = yield* decodeSeed(text).pipe(
    Effect.mapError((e) => CliExit.usage(`--seed ${source}: ${Issues.format(e.issue)}`))
  )
  apply(seed, wecom, feishu)
})

/**
 * Puts a decoded seed into both directories: its classes, students (with their classes), parents and departments.
 *
 * @since 0.3.0
 * @category seeding
 */
export const apply = (seed: SeedFile, wecom: WeComTesting.Directory, feishu: FeishuTesting.Directory): void => {
  for (const d of seed.wecomDepartments ?? []) wecom.addDepartment(d)
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
    wecom.addParent({
      parent_userid: p.parent_userid,
      ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
      ...(p.children === undefined ? {} : { children: p.children })
    })
  }
  feishu.addDepartments(seed.departments ?? [])
}

/**
 * What `dirsync sandbox --demo-seed` starts with: the school that the README's examples and the files in
 * `examples/` are written against, so they run against a fresh sandbox as written. Every student and parent the
 * example files name, with the old ids of their renames, and classes 1–4. No departments: the Feishu examples
 * create theirs.
 *
 * @since 0.3.0
 * @category seeding
 */
export const demoSeed: SeedFile = {
  classes: [1, 2, 3, 4],
  students: [
    { student_userid: "zhangsan", name: "张三", department: [1, 2] },
    { student_userid: "lisi", name: "李四", department: [3] },
    { student_userid: "wangwu", name: "王五", department: [3] },
    { student_userid: "zhaoliu", name: "赵六", department: [1] },
    { student_userid: "sunqi", name: "孙七", department: [2, 3] }
  ],
  parents: [
    { parent_userid: "zhangsan_baba", mobile: "13900000001" },
    { parent_userid: "zhangsan_mama", mobile: "13900000002" },
    { parent_userid: "lisi_mama", mobile: "13900000003" },
    { parent_userid: "wangwu_yeye", mobile: "13900000004" },
    { parent_userid: "zhaoliu_baba", mobile: "13900000006" }
  ]
}

/**
 * Loads a `--seed` JSON file into both directories. A missing file or a wrong shape is a usage error naming the
 * file (and the field).
 *
 * @since 0.2.0
 * @category seeding
 */
export const fromFile = (path: string, wecom: WeComTesting.Directory, feishu: FeishuTesting.Directory) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) =>
        CliExit.usage(`--seed ${path}: ${e.reason._tag === "NotFound" ? "not found" : Files.describeError(e)}`)
      )
    )
    return yield* load(text, path, wecom, feishu)
  })

/**
 * The example files shipped with the CLI package (`packages/cli/examples`, linked as `examples/` at the repo root),
 * found next to this module's directory both in `src/` and in the bundled `dist/`.
 *
 * @since 0.2.0
 * @category files
 */
export const examplesDir: string = join(import.meta.dirname, "..", "examples")

// =============================================================================
// Serving
// =============================================================================

/**
 * A request as the vendor mocks see it.
 *
 * @since 0.2.0
 * @category models
 */
export type Request = MockTransport.Request

/**
 * A mock's answer, or `"drop"` to close the connection without one.
 *
 * @since 0.2.0
 * @category models
 */
export type Response = MockTransport.Response | "drop"

/**
 * @since 0.2.0
 * @category models
 */
export type Handler = MockTransport.Handler

/**
 * Routes by path prefix, e.g. `/cgi-bin/` → WeCom, `/open-apis/` → Feishu.
 *
 * @since 0.2.0
 * @category models
 */
export interface Route {
  readonly prefix: string
  readonly handler: Handler
}

const MAX_BODY = 16 * 1024 * 1024

const readBody = (req: IncomingMessage): Promise<string | undefined> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY) {
        resolve(undefined)
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const flatHeaders = (req: IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v
  return out
}

/** Announces the whole body, sends `cutAfter` bytes of it, then resets the connection: a reply cut off. */
const cutShort = (req: IncomingMessage, res: ServerResponse, response: MockTransport.Response, cutAfter: number) => {
  const body = Buffer.from(response.bodyText, "utf8")
  res.writeHead(response.status, { ...response.headers, "content-length": String(body.length) })
  res.flushHeaders()
  const destroy = () => req.socket.destroy()
  if (cutAfter > 0) res.write(body.subarray(0, cutAfter), () => setTimeout(destroy, 5))
  else setTimeout(destroy, 5)
}

/** The body, then `padBytes` spaces written as the client reads them (never built whole), until it hangs up. */
const padded = (res: ServerResponse, response: MockTransport.Response, padBytes: number) => {
  // No content-length: the client learns the size only by reading, as with a runaway reply.
  res.writeHead(response.status, response.headers)
  res.write(response.bodyText)
  const piece = Buffer.alloc(64 * 1024, 32)
  let left = padBytes
  const pump = () => {
    // `destroyed` turns true when the client hangs up (as it does at its size cap): stop writing then.
    while (!res.destroyed && left > 0) {
      const n = Math.min(piece.length, left)
      left -= n
      if (!res.write(n === piece.length ? piece : piece.subarray(0, n))) return void res.once("drain", pump)
    }
    if (!res.destroyed) res.end()
  }
  pump()
}

/**
 * Starts the server in the current scope and returns its base URL (`http://127.0.0.1:PORT`). Port 0 picks a free
 * port. The server closes when the scope closes.
 *
 * @since 0.2.0
 * @category constructors
 */
export const serve = (routes: ReadonlyArray<Route>, options: { readonly port?: number; readonly host?: string } = {}) =>
  Effect.gen(function*() {
    const services = yield* Effect.context<never>()
    const answer = async (req: IncomingMessage, res: ServerResponse) => {
      const url = req.url ?? "/"
      const route = routes.find((r) => url.startsWith(r.prefix))
      if (route === undefined) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "no such endpoint" }))
        return
      }
      const bodyText = await readBody(req)
      if (bodyText === undefined) {
        res.writeHead(413, { "content-type": "text/plain" }).end("request body too large")
        return
      }
      const exit = await Effect.runPromiseExitWith(services)(
        route.handler({ method: req.method ?? "GET", url, headers: flatHeaders(req), bodyText })
      )
      if (Exit.isFailure(exit)) {
        res.writeHead(500, { "content-type": "text/plain" }).end("sandbox handler failed")
        return
      }
      const response = exit.value
      if (response === "drop") {
        req.socket.destroy()
        return
      }
      if (response.cutAfter !== undefined) return cutShort(req, res, response, response.cutAfter)
      if (response.padBytes !== undefined) return padded(res, response, response.padBytes)
      res.writeHead(response.status, response.headers).end(response.bodyText)
    }
    const server = http.createServer((req, res) => {
      answer(req, res).catch(() => res.destroy())
    })
    server.keepAliveTimeout = 30_000
    const host = options.host ?? "127.0.0.1"
    yield* Effect.acquireRelease(
      Effect.callback<void, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(options.port ?? 0, host, () => resume(Effect.void))
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address() as AddressInfo
    return { url: `http://${host}:${address.port}`, port: address.port, server }
  })

/**
 * @since 0.2.0
 * @category models
 */
export type Served = Effect.Success<ReturnType<typeof serve>>
