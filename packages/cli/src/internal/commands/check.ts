/**
 * `dirsync wecom check` and `dirsync feishu check`: the credentials and the app's permissions, proved with read-only
 * calls before a run, and each refusal turned into the setting an admin has to change.
 *
 * - WeCom: `gettoken` (40013 corp id, 40001/40091 secret, 60020 trusted IP), then `school/department/list`, which
 *   WeCom answers only to an app with access to the school contacts (48002, 60011, 65022, 65014 say what is missing).
 * - Feishu: `tenant_access_token/internal` (99991543, 10014, 99991662, 99991673, 99991401), then contact v3 `scopes`
 *   (which departments the app may see, or 99991672 naming the scopes it lacks), then contact v2 `task/get` with a
 *   task id that cannot exist: it needs the same scopes as `department/batch_add`, so 40031/40032 ("no such task")
 *   proves the app may create departments without creating one.
 *
 * Exit 0 when every check passes, 1 when one fails, 2 when the configuration is missing or refused (nothing sent).
 */
import { VendorError } from "@dirsync/core"
import * as FeishuBatchTask from "@dirsync/feishu/FeishuBatchTask"
import * as FeishuClient from "@dirsync/feishu/FeishuClient"
import type { FeishuError } from "@dirsync/feishu/FeishuError"
import * as FeishuTesting from "@dirsync/feishu/testing"
import * as WeComTesting from "@dirsync/wecom/testing"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import type { WeComError } from "@dirsync/wecom/WeComError"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as CliExit from "../../CliExit.ts"
import * as Report from "../../Report.ts"
import * as Target from "../../Target.ts"
import * as Terminal from "../terminal.ts"
import { count } from "../text.ts"

// =============================================================================
// Models
// =============================================================================

/** The flags both check commands take. */
export interface CheckFlags {
  readonly sandbox: boolean
  readonly json: boolean
}

/** One check: passed, failed, or not reached because an earlier one failed. */
export interface Check {
  readonly name: string
  readonly status: "ok" | "failed" | "skipped"
  /** What was proved, or what is wrong and where to change it. */
  readonly detail: string
  /** The vendor's code when it refused. */
  readonly code?: number | undefined
  /** The permissions or settings the vendor says are missing. */
  readonly missing?: ReadonlyArray<string> | undefined
}

/** A whole check run, as `--json` prints it. */
export interface Result {
  readonly command: string
  readonly target: string
  readonly ok: boolean
  readonly checks: ReadonlyArray<Check>
}

const plural = (n: number, one: string, many: string): string => `${count(n)} ${n === 1 ? one : many}`

const passed = (name: string, detail: string): Check => ({ name, status: "ok", detail })
const skipped = (name: string, because: string): Check => ({
  name,
  status: "skipped",
  detail: `not checked: ${because}`
})

interface Advice {
  readonly detail: string
  readonly missing?: ReadonlyArray<string>
}

const failed = (name: string, code: number, advice: Advice): Check => ({
  name,
  status: "failed",
  detail: advice.detail,
  ...(code === 0 ? {} : { code }),
  ...(advice.missing === undefined ? {} : { missing: advice.missing })
})

// =============================================================================
// WeCom
// =============================================================================

const WECOM_SCHOOL_APP = "家校沟通 → 可调用接口的应用 (读取和编辑)"

/** What each refusal means for an admin: the setting to change, in the words of WeCom's admin console. */
const wecomAdvice: Readonly<Record<number, Advice>> = {
  40013: { detail: "WECOM_CORP_ID is not a corp id WeCom knows (40013): copy it from 我的企业 → 企业信息 → 企业ID" },
  40001: {
    detail: "WECOM_SECRET was refused for this corp (40001): use the Secret of the self-built app that reads and " +
      "edits the school contacts; a reset secret or a disabled app is refused the same way"
  },
  40091: { detail: "WECOM_SECRET was refused (40091): it may be another corp's secret" },
  60020: {
    detail: "this machine's IP address is not among the app's trusted IPs (60020): add it under the app's " +
      "企业可信IP; the change takes about a minute",
    missing: ["企业可信IP (trusted IP)"]
  },
  48001: {
    detail: `the app is not authorised for the school-contacts API (48001): add it under ${WECOM_SCHOOL_APP}`,
    missing: [WECOM_SCHOOL_APP]
  },
  48002: {
    detail: `the app may not call the school-contacts API (48002): add it under ${WECOM_SCHOOL_APP}; since ` +
      "2023-12-01 the secret of the 家校沟通 system app no longer works, a self-built app's does",
    missing: [WECOM_SCHOOL_APP]
  },
  60011: {
    detail: "the school's departments are outside the app's visible range (60011): set the app's 可见范围 to the " +
      "whole school",
    missing: ["可见范围 (visible range): the whole school"]
  },
  65022: {
    detail: `the app has no permission on the school contacts (65022): give it 读取和编辑 under ${WECOM_SCHOOL_APP}`,
    missing: [WECOM_SCHOOL_APP]
  },
  65014: { detail: "this corp is not a school (65014): the school contacts (家校通讯录) exist only in a school corp" },
  301002: { detail: "the token belongs to another app (301002): use the corp id and secret of one and the same app" }
}

const wecomRefusal = (name: string, e: WeComError): Check =>
  failed(name, e.code, wecomAdvice[e.code] ?? { detail: Terminal.line(VendorError.describe(e)) })

/** The checks, in order; a failed credential check skips the rest. Never fails: a refusal is a failed check. */
export const wecomChecks: Effect.Effect<ReadonlyArray<Check>, never, WeComClient.WeComClient> = Effect.gen(
  function*() {
    const client = yield* WeComClient.WeComClient
    const token = yield* Effect.result(client.accessToken)
    if (token._tag === "Failure") {
      return [wecomRefusal("credentials", token.failure), skipped("school contacts", "no access token")]
    }
    const credentials = passed("credentials", `WeCom issued an access token to corp ${client.corpId}`)
    const departments = yield* Effect.result(WeComClient.schoolDepartments)
    if (departments._tag === "Failure") return [credentials, wecomRefusal("school contacts", departments.failure)]
    const classes = departments.success.filter((d) => d.type === 1).length
    return [
      credentials,
      passed(
        "school contacts",
        `the app reads the school's department tree (${
          plural(departments.success.length, "department", "departments")
        }, ${plural(classes, "class", "classes")})`
      )
    ]
  }
)

// =============================================================================
// Feishu
// =============================================================================

const scopesOf = (e: FeishuError): ReadonlyArray<string> =>
  (e.permissionViolations ?? []).flatMap((v) => (v.subject === undefined ? [] : [v.subject]))

const feishuAdvice = (e: FeishuError): Advice => {
  switch (e.code) {
    case 99991543:
      return {
        detail: "FEISHU_APP_ID or FEISHU_APP_SECRET is wrong (99991543): copy both from the app's 凭证与基础信息 page"
      }
    case 10014:
      return { detail: "FEISHU_APP_SECRET was refused (10014): copy it again from the app's 凭证与基础信息 page" }
    case 99991662:
      return { detail: "the app is not in use (99991662): enable it in the admin console (管理后台 → 应用管理)" }
    case 99991673:
      return {
        detail: "the app is unavailable in this tenant (99991673): publish a version and have an admin approve it"
      }
    case 99991401:
      return {
        detail: "this machine's IP address is not in the app's IP allow-list (99991401): add it under 安全设置",
        missing: ["IP 白名单 (IP allow-list)"]
      }
    case 99991672:
    case 99991676: {
      const scopes = scopesOf(e)
      const link = e.helps?.[0]?.url
      return {
        detail: `the app lacks a permission scope (${e.code}): apply for ${
          scopes.length === 0 ? "the scope Feishu names" : `one of ${scopes.join(", ")}`
        } under 权限管理, then publish a version${link === undefined ? "" : `; ${Terminal.safe(link)}`}`,
        missing: scopes.length === 0 ? [Terminal.line(e.vendorMessage)] : scopes.map(Terminal.safe)
      }
    }
    case 40001:
      return { detail: "store apps may not change contacts (40001): use a custom app (企业自建应用)" }
    case 40003:
    case 40004:
      return {
        detail: `the app has no authority on the departments (${e.code}): add them to its contact scope ` +
          "(通讯录权限范围), then publish a version",
        missing: ["通讯录权限范围 (contact scope)"]
      }
  }
  return { detail: Terminal.line(e.message) }
}

// A task id that cannot exist: 32 hex digits, as Feishu's are, all zero.
const NO_TASK = "0".repeat(32)

/** The checks, in order; a failed credential check skips the rest. Never fails: a refusal is a failed check. */
export const feishuChecks: Effect.Effect<ReadonlyArray<Check>, never, FeishuClient.FeishuClient> = Effect.gen(
  function*() {
    const client = yield* FeishuClient.FeishuClient
    const token = yield* Effect.result(client.accessToken)
    if (token._tag === "Failure") {
      return [
        failed("credentials", token.failure.code, feishuAdvice(token.failure)),
        skipped("contact scope", "no tenant_access_token"),
        skipped("department writes", "no tenant_access_token")
      ]
    }
    const checks: Array<Check> = [
      passed("credentials", `Feishu issued a tenant_access_token to app ${client.appId}`)
    ]
    const scope = yield* Effect.result(FeishuClient.contactScope())
    if (scope._tag === "Failure") {
      checks.push(failed("contact scope", scope.failure.code, feishuAdvice(scope.failure)))
    } else {
      const { complete, departmentIds, userIds } = scope.success
      const more = complete ? "" : " or more"
      const seen = (ids: ReadonlyArray<string>, one: string, many: string) =>
        `${ids.length}${more} ${ids.length === 1 && complete ? one : many}`
      checks.push(
        departmentIds.length + userIds.length === 0
          ? failed("contact scope", 0, {
            detail: "the app's contact scope (通讯录权限范围) is empty: add the departments the new ones go under " +
              "(all members, to create them under the root), then publish a version",
            missing: ["通讯录权限范围 (contact scope)"]
          })
          : passed(
            "contact scope",
            `the app sees ${seen(departmentIds, "department", "departments")} and ${seen(userIds, "user", "users")}`
          )
      )
    }
    const probe = yield* Effect.result(FeishuBatchTask.get(NO_TASK))
    checks.push(
      probe._tag === "Success" || FeishuBatchTask.taskGoneCodes.has(probe.failure.code)
        ? passed("department writes", "the app may create departments (department/batch_add); nothing was written")
        : failed("department writes", probe.failure.code, feishuAdvice(probe.failure))
    )
    return checks
  }
)

// =============================================================================
// Output
// =============================================================================

/** Whether stdout shows ✓ and ✗: an interactive terminal; a pipe or a log gets plain words. */
const symbols = (): boolean => process.stdout.isTTY === true && process.env["TERM"] !== "dumb"

const marks: Readonly<Record<Check["status"], { readonly tty: string; readonly plain: string }>> = {
  ok: { tty: "✓", plain: "ok  " },
  failed: { tty: "✗", plain: "FAIL" },
  skipped: { tty: "-", plain: "skip" }
}

const mark = (status: Check["status"], tty: boolean): string => (tty ? marks[status].tty : marks[status].plain)

/** The lines people read: the target, one line per check, and the verdict. */
export const render = (result: Result, tty: boolean): string => {
  const lines = [`dirsync ${result.command}: ${Terminal.line(result.target)}`]
  for (const c of result.checks) lines.push(`${mark(c.status, tty)} ${c.name}: ${Terminal.line(c.detail)}`)
  const failures = result.checks.filter((c) => c.status === "failed").length
  lines.push(
    failures === 0
      ? `all ${result.checks.length} checks passed`
      : `${failures} of ${result.checks.length} checks failed`
  )
  return `${lines.join("\n")}\n`
}

/** Prints the result (one JSON object with `--json`) and ends with exit 1 when a check failed. */
export const finish = (result: Result, flags: CheckFlags): Effect.Effect<void, CliExit.CliExit> =>
  Effect.suspend(() => {
    if (flags.json) process.stdout.write(`${Terminal.scrub(JSON.stringify(result))}\n`)
    else process.stdout.write(render(result, symbols()))
    return result.ok ? Effect.void : Effect.fail(new CliExit.CliExit({ code: 1, message: "", json: flags.json }))
  })

// =============================================================================
// Targets
// =============================================================================

// One check must not hang on an unreachable host for the write commands' 30 seconds per attempt.
const requestTimeout = "15 seconds"

/** The CLI installs no tracer: no HTTP spans, no trace headers to the vendor (as `Target` does for the runs). */
const withoutHttpSpans = Layer.succeed(HttpClient.TracerDisabledWhen, () => true)

const httpClient = Layer.merge(NodeHttpClient.layerNodeHttpOptions({ keepAlive: true }), withoutHttpSpans)

const run = <S>(
  command: string,
  flags: CheckFlags,
  checks: Effect.Effect<ReadonlyArray<Check>, never, S>,
  target: {
    readonly label: string
    readonly layer: Layer.Layer<S, Config.ConfigError>
    readonly secrets: () => ReadonlyArray<string>
  }
) =>
  Effect.gen(function*() {
    Terminal.registerSecrets(target.secrets)
    const list = yield* Effect.provide(checks, target.layer).pipe(Effect.mapError(Target.refusal))
    const result: Result = {
      command,
      target: target.label,
      ok: list.every((c) => c.status === "ok"),
      checks: list
    }
    return yield* finish(result, flags)
  })

/** `dirsync wecom check` */
export const wecom = (flags: CheckFlags) =>
  Effect.gen(function*() {
    const command = "wecom check"
    if (flags.sandbox) {
      const directory = WeComTesting.make()
      const layer = WeComClient.layerConfig({ requestTimeout }).pipe(
        Layer.provide(WeComTesting.layerHttpClient(directory)),
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
          WECOM_CORP_ID: directory.corpId,
          WECOM_SECRET: directory.secret,
          WECOM_BASE_URL: "http://127.0.0.1"
        })))
      )
      return yield* run(command, flags, wecomChecks, {
        label: "sandbox",
        layer,
        secrets: () => [directory.secret, ...directory.issuedTokens()]
      })
    }
    const v = Target.wecomVariables
    const { id, secret } = yield* Target.credentials(v, `try \`dirsync ${command} --sandbox\``)
    const baseUrl = yield* Target.baseUrlOf(v.baseUrl, WeComClient.defaultBaseUrl, WeComClient.checkBaseUrl)
    const layer = WeComClient.layer({ corpId: id, secret, baseUrl, requestTimeout }).pipe(Layer.provide(httpClient))
    return yield* run(command, flags, wecomChecks, {
      label: Report.sanitizeTarget(baseUrl),
      layer,
      secrets: () => [Redacted.value(secret)]
    })
  })

/** `dirsync feishu check` */
export const feishu = (flags: CheckFlags) =>
  Effect.gen(function*() {
    const command = "feishu check"
    if (flags.sandbox) {
      const directory = FeishuTesting.make()
      const layer = FeishuClient.layerConfig({ requestTimeout }).pipe(
        Layer.provide(FeishuTesting.layerHttpClient(directory)),
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
          FEISHU_APP_ID: directory.appId,
          FEISHU_APP_SECRET: directory.appSecret,
          FEISHU_BASE_URL: "http://127.0.0.1"
        })))
      )
      return yield* run(command, flags, feishuChecks, {
        label: "sandbox",
        layer,
        secrets: () => [directory.appSecret, ...directory.issuedTokens()]
      })
    }
    const v = Target.feishuVariables
    const { id, secret } = yield* Target.credentials(v, `try \`dirsync ${command} --sandbox\``)
    const baseUrl = yield* Target.baseUrlOf(v.baseUrl, FeishuClient.defaultBaseUrl, FeishuClient.checkBaseUrl)
    const layer = FeishuClient.layer({ appId: id, appSecret: secret, baseUrl, requestTimeout }).pipe(
      Layer.provide(httpClient)
    )
    return yield* run(command, flags, feishuChecks, {
      label: Report.sanitizeTarget(baseUrl),
      layer,
      secrets: () => [Redacted.value(secret)]
    })
  })
