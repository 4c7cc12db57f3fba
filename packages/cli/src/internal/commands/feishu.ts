/**
 * `dirsync feishu departments add`: resolve the target, then hand the runner the endpoint (or, for a dry run, its
 * pure spec).
 */
import * as Departments from "@dirsync/feishu/Departments"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as CliExit from "../../CliExit.ts"
import * as Input from "../../Input.ts"
import * as Progress from "../../Progress.ts"
import * as Runner from "../../Runner.ts"
import * as Target from "../../Target.ts"

/** `dirsync feishu departments add <file>` */
export const departments = (
  file: string,
  flags: Target.Flags,
  batchSize: number | undefined,
  pollDeadline?: Duration.Duration | undefined
) =>
  Effect.gen(function*() {
    const badMap = flags.map === undefined ? undefined : Input.parseMap("departments", flags.map)
    if (badMap !== undefined) return yield* CliExit.usage(badMap)
    const counters = Progress.makeCounters()
    const options: Departments.Options = {
      ...(batchSize === undefined ? {} : { chunkSize: batchSize }),
      ...(pollDeadline === undefined ? {} : { poll: { deadline: pollDeadline } })
    }
    const target = yield* Target.feishu({ flags, file, counters, departments: options })
    const spec = {
      command: "feishu departments add",
      file,
      layout: "departments",
      target: target.label,
      flags: { ...flags, concurrency: flags.concurrency ?? 1 },
      chunkSize: batchSize,
      counters,
      secrets: target.secrets
    } as const
    if (target.layer === undefined) return yield* Runner.run({ ...spec, endpoint: Departments.spec(options) })
    return yield* Effect.gen(function*() {
      const service = yield* Departments.Departments
      return yield* Runner.run({ ...spec, endpoint: service.endpoint })
    }).pipe(Effect.provide(target.layer))
  })
