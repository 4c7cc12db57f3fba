/**
 * `dirsync sandbox`: the WeCom and Feishu emulators on one loopback port until interrupted, and the environment
 * that points dirsync at them.
 */
import { Faults } from "@dirsync/core/testing"
import * as FeishuTesting from "@dirsync/feishu/testing"
import * as WeComTesting from "@dirsync/wecom/testing"
import * as Effect from "effect/Effect"
import * as CliExit from "../../CliExit.ts"
import * as Sandbox from "../../Sandbox.ts"
import * as Terminal from "../terminal.ts"
import { fsWords } from "../text.ts"

const fsWordsOrCode = (e: Error): string => {
  const code = (e as NodeJS.ErrnoException).code
  return code === "EADDRINUSE" ? "the port is already in use" : code === undefined ? e.message : fsWords(code)
}

/** `--port`: a whole number from 0 (any free port) to 65535. */
export const parsePort = (text: string): Effect.Effect<number, CliExit.CliExit> => {
  const port = /^\d{1,5}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN
  return port <= 65535
    ? Effect.succeed(port)
    : Effect.fail(
      CliExit.usage(`--port ${Terminal.line(text)}: give a port number from 0 to 65535 (0 picks a free port)`)
    )
}

/** `dirsync sandbox [--port N] [--faults SPEC] [--rate N] [--seed FILE] [--demo-seed]` */
export const sandbox = (args: {
  readonly port: string
  readonly faults: string
  readonly rate: number | undefined
  readonly seed: string | undefined
  /** Start with `Sandbox.demoSeed`; a `--seed` file is loaded on top of it. */
  readonly demoSeed?: boolean | undefined
  /** `off`: Feishu's contact v2 answers 404, as a retired API would. */
  readonly feishuV2?: "on" | "off" | undefined
  /** Enforce Feishu's documented per-API limits on the contact v3 department endpoints. */
  readonly feishuV3Limits?: boolean | undefined
}) =>
  Effect.gen(function*() {
    const port = yield* parsePort(args.port)
    const spec = [args.faults, args.rate === undefined ? "" : `rate=${args.rate}`].filter((s) => s).join(",")
    const faults = yield* Effect.try({
      try: () => Faults.parse(spec),
      catch: (e) => CliExit.usage(e instanceof Error ? e.message : String(e))
    })
    // A sandbox may serve millions of rows: keep only the latest calls' bodies.
    const wecom = WeComTesting.make({ faults, callLogLimit: 1000 })
    const feishu = FeishuTesting.make({
      faults,
      callLogLimit: 1000,
      v2: args.feishuV2 ?? "on",
      ...(args.feishuV3Limits === true ? { v3RateLimit: { perSecond: 50, perMinute: 1000 } } : {})
    })
    if (args.demoSeed === true) Sandbox.apply(Sandbox.demoSeed, wecom, feishu)
    if (args.seed !== undefined) yield* Sandbox.fromFile(args.seed, wecom, feishu)
    const served = yield* Sandbox.serve([
      { prefix: "/cgi-bin/", handler: wecom.handle },
      { prefix: "/open-apis/", handler: feishu.handle }
    ], { port }).pipe(
      // A port already taken (EADDRINUSE) or not ours to bind (EACCES) is the user's to change: one line, exit 2.
      Effect.mapError((e) => CliExit.usage(`--port ${port}: cannot listen (${fsWordsOrCode(e)})`))
    )
    process.stdout.write(
      [
        `dirsync sandbox: WeCom and Feishu emulators on ${served.url}${spec ? ` (faults: ${spec})` : ""}`,
        ...(args.feishuV2 === "off" ? ["Feishu contact v2 is off: batch_add and task/get answer 404."] : []),
        ...(args.feishuV3Limits === true ? ["Feishu contact v3 department APIs: 50/s and 1,000/min each."] : []),
        ...(args.demoSeed === true
          ? [
            `Seeded with the demo school (classes ${Sandbox.demoSeed.classes?.join(", ")}; students ${
              Sandbox.demoSeed.students?.map((s) => s.student_userid).join(", ")
            }; parents ${Sandbox.demoSeed.parents?.map((p) => p.parent_userid).join(", ")}).`
          ]
          : []),
        `Point dirsync at it (this is a local emulator; these credentials are not secret):`,
        `export WECOM_CORP_ID=${wecom.corpId}`,
        `export WECOM_SECRET=${wecom.secret}`,
        `export WECOM_BASE_URL=${served.url}`,
        `export FEISHU_APP_ID=${feishu.appId}`,
        `export FEISHU_APP_SECRET=${feishu.appSecret}`,
        `export FEISHU_BASE_URL=${served.url}`,
        `Press Ctrl-C to stop.`,
        ""
      ].join("\n")
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)
