/**
 * What a server runs for: its tenants (a WeCom corp or a Feishu app each), their credentials, budgets and schedules, read from a JSON
 * config file and the environment.
 *
 * Secrets never sit in the file: a tenant names the environment variable that holds its secret (`secretEnv`), which
 * is read once at start into a `Redacted`. Nothing that carries a secret is written to Postgres: workflow payloads and
 * entity messages name the tenant, and the runner that owns the tenant looks its credentials up here.
 *
 * @since 0.4.0
 */
import { RateLimit } from "@dirsync/core"
import * as FeishuClient from "@dirsync/feishu/FeishuClient"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import * as Context from "effect/Context"
import * as Cron from "effect/Cron"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { readFileSync } from "node:fs"

// =============================================================================
// Models
// =============================================================================

/**
 * What a run does: the endpoint its rows go to. `students.update` and `parents.update` are what `dirsync wecom
 * students update` and `dirsync wecom parents update` send; `departments.add` is what `dirsync feishu departments
 * add` sends (a Feishu tenant's only kind).
 *
 * @since 0.4.0
 * @category models
 */
export const Kind = Schema.Literals([
  "students.update",
  "parents.update",
  "students.create",
  "students.delete",
  "parents.create",
  "parents.delete",
  "departments.add"
])

/**
 * @since 0.4.0
 * @category models
 */
export type Kind = typeof Kind.Type

/**
 * @since 0.4.0
 * @category models
 */
export const TenantId = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9._-]{0,63}$/, {
    message: "a tenant id is 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
  })
)

/**
 * A recurring run: at each cron time, the server reads `file` (the CLI's readers: CSV, Excel, JSON, with `map`) and
 * runs it as `kind`. A tick that finds the tenant's previous run still going is skipped, never overlapped.
 *
 * @since 0.4.0
 * @category models
 */
export const Schedule = Schema.Struct({
  cron: Schema.String,
  kind: Kind,
  file: Schema.String,
  map: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.4.0
 * @category models
 */
export type Schedule = typeof Schedule.Type

/**
 * Calls per minute and per hour.
 *
 * @since 0.4.0
 * @category models
 */
export const Window = Schema.Struct({
  perMinute: Schema.Int.check(Schema.isGreaterThan(0)),
  perHour: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0)))
})

/**
 * A budget per API path: every path gets `perMinute` (and `perHour`), and a path listed in `paths` gets its own
 * figures instead (an API with a lower limit; WeCom's per-corp figures are 10,000 a minute and 150,000 an hour).
 *
 * @since 0.4.0
 * @category models
 */
export const Budget = Schema.Struct({
  perMinute: Schema.Int.check(Schema.isGreaterThan(0)),
  perHour: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0))),
  paths: Schema.optionalKey(Schema.Record(Schema.String, Window))
})

/**
 * @since 0.4.0
 * @category models
 */
export type Budget = typeof Budget.Type

/**
 * @since 0.4.0
 * @category models
 */
const tenantFields = {
  id: TenantId,
  /** The environment variable holding the app's secret. */
  secretEnv: Schema.String.check(Schema.isPattern(/^[A-Z_][A-Z0-9_]*$/)),
  /** The vendor's API by default; plain http only on loopback (a sandbox). */
  baseUrl: Schema.optionalKey(Schema.String),
  /** The app's per-API budget. Default the vendor's (WeCom: 10,000 a minute and 150,000 an hour). */
  budget: Schema.optionalKey(Budget),
  /** Calls in flight at once for this corp (WeCom only). Default 2 (WeCom answers 45033 to more). */
  concurrency: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 16 }))),
  schedules: Schema.optionalKey(Schema.Array(Schedule))
}

/**
 * A WeCom corp's school contacts app.
 *
 * @since 0.4.0
 * @category models
 */
export const WeComTenant = Schema.Struct({
  ...tenantFields,
  vendor: Schema.Literal("wecom"),
  corpId: Schema.String.check(Schema.isNonEmpty())
})

/**
 * A Feishu (Lark) self-built app of one tenant.
 *
 * @since 0.4.0
 * @category models
 */
export const FeishuTenant = Schema.Struct({
  ...tenantFields,
  vendor: Schema.Literal("feishu"),
  appId: Schema.String.check(Schema.isNonEmpty())
})

/**
 * @since 0.4.0
 * @category models
 */
export const TenantEntry = Schema.Union([WeComTenant, FeishuTenant])

/**
 * @since 0.4.0
 * @category models
 */
export type TenantEntry = typeof TenantEntry.Type

/**
 * The config file.
 *
 * @since 0.4.0
 * @category models
 */
export const ConfigFile = Schema.Struct({
  tenants: Schema.Array(TenantEntry),
  /**
   * The per-IP budget per API path, shared by every runner that says it leaves through the same egress IP. Default
   * WeCom's 20,000 a minute (40,000 for service providers: set it).
   */
  ipBudget: Schema.optionalKey(Budget)
})

/**
 * @since 0.4.0
 * @category models
 */
export type ConfigFile = typeof ConfigFile.Type

/**
 * A tenant as a runner uses it: the entry with its secret read.
 *
 * @since 0.4.0
 * @category models
 */
export type Tenant = TenantEntry & { readonly secret: Redacted.Redacted<string> }

/**
 * @since 0.4.0
 * @category models
 */
export interface Service {
  readonly tenants: ReadonlyMap<string, Tenant>
  readonly ipBudget: Budget
  readonly tenant: (id: string) => Option.Option<Tenant>
}

/**
 * @since 0.4.0
 * @category services
 */
export class ServerConfig extends Context.Service<ServerConfig, Service>()("@dirsync/server/ServerConfig") {}

/**
 * @since 0.4.0
 * @category errors
 */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ServerConfigError", {
  message: Schema.String
}) {}

// =============================================================================
// Budgets
// =============================================================================

/**
 * WeCom's per-IP budget per API: 20,000 calls a minute (developer.work.weixin.qq.com/document/path/90454).
 *
 * @since 0.4.0
 * @category constants
 */
export const defaultIpBudget: Budget = { perMinute: 20_000 }

const windowLimit = (w: typeof Window.Type): RateLimit.Limit => ({
  calls: w.perMinute,
  window: "1 minute",
  ...(w.perHour === undefined ? {} : { also: [{ calls: w.perHour, window: "1 hour" }] })
})

/**
 * A budget as the clients' per-path `RateLimit.Limit`: the path's own figures when it has them.
 *
 * @since 0.4.0
 * @category budgets
 */
export const limitOf = (budget: Budget | undefined, fallback: RateLimit.Limit) => {
  if (budget === undefined) return (_path: string): RateLimit.Limit => fallback
  const all = windowLimit(budget)
  const paths = new Map(Object.entries(budget.paths ?? {}).map(([path, w]) => [path, windowLimit(w)]))
  return (path: string): RateLimit.Limit => paths.get(path) ?? all
}

/**
 * The app's per-API budget as the client's `rateLimit` option.
 *
 * @since 0.4.0
 * @category budgets
 */
export const accountLimit = (tenant: TenantEntry): (path: string) => RateLimit.Limit =>
  limitOf(tenant.budget, tenant.vendor === "wecom" ? WeComClient.defaultRateLimit : FeishuClient.defaultRateLimit)

/**
 * The vendor account a tenant is: `wecom:<corp id>` or `feishu:<app id>`.
 *
 * @since 0.4.0
 * @category models
 */
export const accountOf = (tenant: TenantEntry): string =>
  tenant.vendor === "wecom" ? `wecom:${tenant.corpId}` : `feishu:${tenant.appId}`

/**
 * The kinds of run a vendor takes.
 *
 * @since 0.4.0
 * @category models
 */
export const kindsOf = (vendor: TenantEntry["vendor"]): ReadonlyArray<Kind> =>
  vendor === "wecom"
    ? ["students.update", "parents.update", "students.create", "students.delete", "parents.create", "parents.delete"]
    : ["departments.add"]

/**
 * Why a tenant cannot take a kind of run, or `undefined` when it can.
 *
 * @since 0.4.0
 * @category models
 */
export const kindRefusal = (tenant: TenantEntry, kind: Kind): string | undefined =>
  kindsOf(tenant.vendor).includes(kind)
    ? undefined
    : `tenant "${tenant.id}" is a ${tenant.vendor === "wecom" ? "WeCom" : "Feishu"} tenant: its runs are ${
      kindsOf(tenant.vendor).join(", ")
    }, not ${kind}`

// =============================================================================
// Constructors
// =============================================================================

const decode = Schema.decodeUnknownResult(ConfigFile)

/**
 * Checks a decoded file and reads the secrets from `env`. Every problem is named: the tenant, the field.
 *
 * @since 0.4.0
 * @category constructors
 */
export const fromFile = (
  file: ConfigFile,
  env: Readonly<Record<string, string | undefined>>,
  source = "config"
): Result.Result<Service, ConfigError> => {
  const problems: Array<string> = []
  const tenants = new Map<string, Tenant>()
  const accounts = new Map<string, string>()
  for (const entry of file.tenants) {
    if (tenants.has(entry.id)) problems.push(`tenant "${entry.id}" is listed twice`)
    const account = accountOf(entry)
    const other = accounts.get(account)
    if (other !== undefined) problems.push(`tenants "${other}" and "${entry.id}" name the same app (${account})`)
    accounts.set(account, entry.id)
    const secret = env[entry.secretEnv]
    if (secret === undefined || secret.length === 0) {
      problems.push(`tenant "${entry.id}": the environment variable ${entry.secretEnv} (its secret) is not set`)
    }
    for (const [i, s] of (entry.schedules ?? []).entries()) {
      const cron = Cron.parse(s.cron)
      if (Result.isFailure(cron)) {
        problems.push(`tenant "${entry.id}": schedules[${i}].cron "${s.cron}": ${cron.failure.message}`)
      }
      const refused = kindRefusal(entry, s.kind)
      if (refused !== undefined) problems.push(`schedules[${i}]: ${refused}`)
    }
    tenants.set(entry.id, { ...entry, secret: Redacted.make(secret ?? "") })
  }
  if (problems.length > 0) return Result.fail(new ConfigError({ message: `${source}: ${problems.join("; ")}` }))
  return Result.succeed({
    tenants,
    ipBudget: file.ipBudget ?? defaultIpBudget,
    tenant: (id) => Option.fromUndefinedOr(tenants.get(id))
  })
}

/**
 * Reads and checks a config file.
 *
 * @since 0.4.0
 * @category constructors
 */
export const load = (path: string, env: Readonly<Record<string, string | undefined>> = process.env) =>
  Effect.gen(function*() {
    const text = yield* Effect.try({
      try: () => readFileSync(path, "utf8"),
      catch: (e) => new ConfigError({ message: `${path}: cannot be read (${(e as Error).message})` })
    })
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new ConfigError({ message: `${path}: not JSON (${(e as Error).message})` })
    })
    const file = decode(json)
    if (Result.isFailure(file)) {
      return yield* new ConfigError({ message: `${path}: ${file.failure.message}` })
    }
    return yield* fromFile(file.success, env, path).pipe(Effect.fromResult)
  })

/**
 * @since 0.4.0
 * @category layers
 */
export const layer = (path: string, env?: Readonly<Record<string, string | undefined>>) =>
  Layer.effect(ServerConfig, load(path, env))

/**
 * A config given in code (tests, embedding).
 *
 * @since 0.4.0
 * @category layers
 */
export const layerFrom = (file: ConfigFile, env: Readonly<Record<string, string | undefined>>) =>
  Layer.effect(ServerConfig, Effect.fromResult(fromFile(file, env)))
