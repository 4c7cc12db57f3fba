/**
 * What the server tests build the same way: student rows to submit, a tenant per sandbox corp with its secret in an
 * environment of its own, and the wait for a run to end.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Runs from "../../src/Runs.ts"
import type * as ServerConfig from "../../src/ServerConfig.ts"
import type * as Corps from "./corps.ts"

/** `n` students `<prefix>1…`, rows 1…n, spread over the sandbox's 50 classes. */
export const students = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    row: i + 1,
    value: { student_userid: `${prefix}${i + 1}`, name: `学生${i + 1}`, department: [1 + (i % 50)] }
  }))

/** One tenant per corp (`<idPrefix><i>`), each secret in `env` under its own variable. */
export const tenantsOf = (
  sandbox: Corps.Started,
  options: {
    readonly idOf?: ((i: number) => string) | undefined
    readonly extra?: ((i: number) => Partial<Omit<typeof ServerConfig.WeComTenant.Type, "vendor">>) | undefined
  } = {}
) => {
  const env: Record<string, string> = {}
  const tenants = sandbox.corps.map((c, i): typeof ServerConfig.WeComTenant.Type => {
    env[`DIRSYNC_TEST_SECRET_${i}`] = c.secret
    return {
      id: options.idOf?.(i) ?? `school-${i}`,
      vendor: "wecom",
      corpId: c.corpId,
      secretEnv: `DIRSYNC_TEST_SECRET_${i}`,
      baseUrl: sandbox.url,
      ...options.extra?.(i)
    }
  })
  return { tenants, env }
}

/** Polls a run until it is done or failed (a minute at most), and returns it. */
export const waitDone = (runs: Runs.Service, runId: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 600; i++) {
      const info = yield* runs.get(runId)
      if (Option.isSome(info) && (info.value.state === "done" || info.value.state === "failed")) return info.value
      yield* Effect.sleep("100 millis")
    }
    return yield* Effect.die(new Error(`run ${runId} did not finish: ${JSON.stringify(yield* runs.get(runId))}`))
  })
