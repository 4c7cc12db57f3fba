/**
 * `dirsync wecom check` and `dirsync feishu check`: credentials and permissions, by read-only calls.
 * (Placeholder contract; the implementation replaces these bodies.)
 */
import * as Effect from "effect/Effect"
import * as CliExit from "../../CliExit.ts"

/** The flags both check commands take. */
export interface CheckFlags {
  readonly sandbox: boolean
  readonly json: boolean
}

/** `dirsync wecom check` */
export const wecom = (_flags: CheckFlags) => Effect.fail(CliExit.usage("dirsync wecom check: not built yet"))

/** `dirsync feishu check` */
export const feishu = (_flags: CheckFlags) => Effect.fail(CliExit.usage("dirsync feishu check: not built yet"))
