/**
 * `dirsync wecom students update` and `dirsync wecom parents update`: resolve the target, then hand the runner the
 * endpoint (or, for a dry run, its pure spec).
 */
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import * as Effect from "effect/Effect"
import * as CliExit from "../../CliExit.ts"
import * as Input from "../../Input.ts"
import * as Progress from "../../Progress.ts"
import * as Runner from "../../Runner.ts"
import * as Sandbox from "../../Sandbox.ts"
import * as Target from "../../Target.ts"

const run = (command: string, file: string, layout: "students" | "parents", flags: Target.Flags) =>
  Effect.scoped(Effect.gen(function*() {
    const badMap = flags.map === undefined ? undefined : Input.parseMap(layout, flags.map)
    if (badMap !== undefined) return yield* CliExit.usage(badMap)
    // Opened once for the whole command: a sandbox seed is the first read, and the run sends what it read.
    const input = yield* Input.read(file, layout, Input.flagOptions(flags))
    const counters = Progress.makeCounters()
    // The pipeline must keep as many chunks in flight as the client allows, or the client's cap is never reached.
    const concurrency = flags.concurrency ?? 2
    const target = yield* Target.wecom({
      flags,
      file,
      counters,
      concurrency,
      seed: (directory) => Sandbox.wecomFromInput(directory, input, layout)
    })
    const spec = {
      command,
      file,
      layout,
      target: target.label,
      flags: { ...flags, concurrency },
      counters,
      secrets: target.secrets,
      input
    }
    if (target.layer === undefined) {
      return layout === "students"
        ? yield* Runner.run({ ...spec, endpoint: SchoolContacts.studentsSpec })
        : yield* Runner.run({ ...spec, endpoint: SchoolContacts.parentsSpec })
    }
    return yield* Effect.gen(function*() {
      const school = yield* SchoolContacts.SchoolContacts
      return layout === "students"
        ? yield* Runner.run({ ...spec, endpoint: school.students })
        : yield* Runner.run({ ...spec, endpoint: school.parents })
    }).pipe(Effect.provide(target.layer))
  }))

/** `dirsync wecom students update <file>` */
export const students = (file: string, flags: Target.Flags) => run("wecom students update", file, "students", flags)

/** `dirsync wecom parents update <file>` */
export const parents = (file: string, flags: Target.Flags) => run("wecom parents update", file, "parents", flags)
