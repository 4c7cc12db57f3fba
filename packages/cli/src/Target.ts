/**
 * Where a write command sends its rows, and the layer that reaches it. A target is one of three kinds:
 *
 * - `real`: the vendor's API. The credentials and the base URL come from Effect `Config` (the CLI provides a
 *   `ConfigProvider` over the environment), and the client's own `layerConfig` builds the client, so the client's
 *   base-URL check is the only one: its refusal becomes a usage error (exit 2) naming the variable.
 * - `sandbox`: the vendor's in-process emulator, handed to the same `layerConfig` through a `ConfigProvider` of the
 *   emulator's (not secret) credentials.
 * - `none`: a dry run. No client and no emulator are built; the summary and report still name the target the run
 *   would have used, and a refused base URL still exits 2 (checked by the client's own rule, as a real run would).
 *
 * Secrets stay `Redacted` until the report writer needs their text to scrub it; no message names a secret.
 *
 * @since 0.2.0
 */
import { Issues, RateLimit } from "@dirsync/core"
import type { Faults } from "@dirsync/core/testing"
import type * as Departments from "@dirsync/feishu/Departments"
import type * as DepartmentWrites from "@dirsync/feishu/DepartmentWrites"
import type * as FeishuClient from "@dirsync/feishu/FeishuClient"
import * as SchoolContacts from "@dirsync/wecom/SchoolContacts"
import type * as WeComTesting from "@dirsync/wecom/testing"
import * as WeComClient from "@dirsync/wecom/WeComClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as CliExit from "./CliExit.ts"
import { fileBytes, isSmall } from "./internal/inputSize.ts"
import * as Progress from "./Progress.ts"
import * as Report from "./Report.ts"
import type * as Runner from "./Runner.ts"

// =============================================================================
// Models
// =============================================================================

/**
 * Write-command flags plus `--faults` (sandbox only).
 *
 * @since 0.2.0
 * @category models
 */
export type Flags = Runner.WriteFlags & { readonly faults: string | undefined }

/**
 * @since 0.2.0
 * @category models
 */
export type Kind = "real" | "sandbox" | "none"

/**
 * @since 0.2.0
 * @category models
 */
export interface Target<S> {
  readonly kind: Kind
  /** What the summary and the report name: `sandbox`, or the vendor base URL. */
  readonly label: string
  /**
   * The vendor service, for `real` and `sandbox`; `undefined` for `none` (a dry run needs only the pure spec). It
   * fails with a usage error (exit 2) when the client refuses its configuration: nothing was sent.
   */
  readonly layer: Layer.Layer<S, CliExit.CliExit> | undefined
  /** Strings that must never appear in output: the secret and any issued token. Read at each write. */
  readonly secrets: () => ReadonlyArray<string>
}

/**
 * A vendor's environment variables: the app id, its secret and the base URL.
 *
 * @since 0.3.0
 * @category models
 */
export interface Variables {
  readonly vendor: string
  readonly id: string
  readonly secret: string
  readonly baseUrl: string
}

/**
 * @since 0.3.0
 * @category configuration
 */
export const wecomVariables: Variables = {
  vendor: "WeCom",
  id: "WECOM_CORP_ID",
  secret: "WECOM_SECRET",
  baseUrl: "WECOM_BASE_URL"
}

/**
 * @since 0.3.0
 * @category configuration
 */
export const feishuVariables: Variables = {
  vendor: "Feishu",
  id: "FEISHU_APP_ID",
  secret: "FEISHU_APP_SECRET",
  baseUrl: "FEISHU_BASE_URL"
}

// =============================================================================
// Configuration
// =============================================================================

/** One line naming the variable: `FEISHU_BASE_URL: must use https, …`. */
const describeConfigError = (e: Config.ConfigError): string =>
  Schema.isSchemaError(e.cause)
    ? Issues.problems(e.cause.issue).map((p) => (p.field.length === 0 ? p.message : `${p.field}: ${p.message}`))
      .join("; ")
    : e.cause.message

/**
 * A client refusing its configuration (a plain-http base URL, say) is a usage error: nothing was sent.
 *
 * @since 0.3.0
 * @category configuration
 */
export const refusal = (e: Config.ConfigError): CliExit.CliExit =>
  CliExit.usage(e._tag === "ConfigError" ? describeConfigError(e) : e.message)

/**
 * The CLI installs no tracer, so the span Effect's HTTP client opens for every request would never be exported, yet
 * it costs CPU per call and sends `traceparent` and `b3` headers to the vendor. The clients' own spans
 * (`WeComClient.post`, …) stay. Library users who install a tracer keep the HTTP spans unless they set
 * `HttpClient.TracerDisabledWhen` themselves.
 */
const withoutHttpSpans = Layer.succeed(HttpClient.TracerDisabledWhen, () => true)

/** The vendor layer as a target gives it: configuration failures become usage errors, and no HTTP spans. */
const targetLayer = <S, R>(
  layer: Layer.Layer<S, Config.ConfigError, R>
): Layer.Layer<S, CliExit.CliExit, R> =>
  Layer.merge(Layer.effectContext(Effect.mapError(Layer.build(layer), refusal)), withoutHttpSpans)

/**
 * The app id and secret must both be set; missing ones are a usage error naming them (exit 2), ending with `hint`
 * (what to try instead).
 *
 * @since 0.3.0
 * @category configuration
 */
export const credentials = Effect.fnUntraced(function*(
  v: Variables,
  hint = "try the command with --sandbox (an in-process emulator) or --dry-run (validation only)"
) {
  const { id, secret } = yield* Config.all({
    id: Config.option(Config.String(v.id)),
    secret: Config.option(Config.Redacted(v.secret))
  }).pipe(Effect.mapError(refusal))
  if (Option.isSome(id) && Option.isSome(secret)) return { id: id.value, secret: secret.value }
  const names = [Option.isNone(id) ? v.id : "", Option.isNone(secret) ? v.secret : ""].filter((n) => n)
  return yield* CliExit.usage(
    `${names.join(" and ")} ${names.length === 1 ? "is" : "are"} not set: set the ${v.vendor} app's credentials in ` +
      `the environment, or ${hint}`
  )
})

/**
 * The base URL after the client's own check (the one base-URL rule; a refusal is a usage error naming the variable).
 *
 * @since 0.3.0
 * @category configuration
 */
export const baseUrlOf = (
  variable: string,
  fallback: string,
  check: (raw: string) => Effect.Effect<string, Config.ConfigError>
): Effect.Effect<string, CliExit.CliExit> =>
  Config.String(variable).pipe(Config.withDefault(fallback)).pipe(
    Effect.flatMap(check),
    Effect.mapError(refusal)
  )

/** The base URL as the summary, `--json` and the report show it: without any user or password it may carry. */
const labelOf = (
  variable: string,
  fallback: string,
  check: (raw: string) => Effect.Effect<string, Config.ConfigError>
) => Effect.map(baseUrlOf(variable, fallback, check), Report.sanitizeTarget)

/**
 * Modules only some runs need, loaded when one does: a run against WeCom's API loads neither Feishu's client nor
 * either emulator (~140 kB, 9% of the code a WeCom run evaluated at start-up; docs/PERFORMANCE.md,
 * "Issue 16: start-up regained").
 */
const load = {
  faults: Effect.promise(() => import("@dirsync/core/testing/Faults")),
  wecomTesting: Effect.promise(() => import("@dirsync/wecom/testing")),
  feishuTesting: Effect.promise(() => import("@dirsync/feishu/testing")),
  feishuClient: Effect.promise(() => import("@dirsync/feishu/FeishuClient")),
  departments: Effect.promise(() => import("@dirsync/feishu/Departments")),
  departmentWrites: Effect.promise(() => import("@dirsync/feishu/DepartmentWrites"))
}

/** The emulator's credentials, as the client's `layerConfig` reads them. They are not secret (README). */
const emulatorConfig = (values: Readonly<Record<string, string>>) =>
  ConfigProvider.layer(ConfigProvider.fromUnknown({ ...values }))

/** `--faults`, checked whether or not the run uses an emulator; `undefined` when not given (no faults). */
const parseFaults = (spec: string | undefined): Effect.Effect<Faults.Faults | undefined, CliExit.CliExit> =>
  spec === undefined ? Effect.succeed(undefined) : Effect.flatMap(load.faults, (faults) =>
    Effect.try({
      try: () => faults.parse(spec),
      catch: (e) => CliExit.usage(e instanceof Error ? e.message : String(e))
    }))

/** What both vendor clients take from the flags: retry and call counting for progress, and --rate. */
/** A header or query value as sent: text, or the text inside a `Redacted`. */
const plain = (value: unknown): string | undefined =>
  typeof value === "string" ? value : Redacted.isRedacted(value) ? String(Redacted.value(value)) : undefined

/**
 * Every token a request carries (WeCom's `access_token` query parameter, Feishu's bearer token), so that the CLI can
 * scrub them from whatever it prints or writes, as it does the secret: the clients scrub their own errors, and this
 * keeps a token out of the output even where a vendor echoes it in a message the client did not expect.
 */
const collectTokens = (tokens: Set<string>) => (request: HttpClientRequest.HttpClientRequest) =>
  Effect.sync(() => {
    for (const [key, value] of request.urlParams) {
      const text = key === "access_token" ? plain(value) : undefined
      if (text !== undefined && text.length > 0) tokens.add(text)
    }
    const auth = plain(request.headers["authorization"])
    if (auth !== undefined && /^Bearer ./i.test(auth)) tokens.add(auth.slice(7))
  })

/**
 * The client's call budget for `--rate N`: N calls a minute, with the vendor's other documented windows kept (WeCom's
 * hourly cap, Feishu's 50 a second). The limiter lets up to N calls go at once, so `--rate` alone would let a Feishu
 * run send a minute's budget within one second.
 *
 * @since 0.3.0
 * @category constructors
 */
export const rateLimitOf = (rate: number | undefined, vendorDefault: RateLimit.Limit): RateLimit.Limit | undefined =>
  rate === undefined ? undefined : { ...vendorDefault, calls: rate, window: "1 minute" }

const clientOptionsOf = (
  flags: Pick<Flags, "rate">,
  counters: Progress.Counters,
  tokens: Set<string>,
  vendorDefault: RateLimit.Limit
) => ({
  retry: { onRetry: Progress.countRetry(counters) },
  transformClient: (client: HttpClient.HttpClient) =>
    client.pipe(
      HttpClient.tapRequest((request) =>
        Effect.andThen(collectTokens(tokens)(request), Effect.sync(() => void counters.calls++))
      )
    ),
  rateLimit: rateLimitOf(flags.rate, vendorDefault)
})

/** The variable that overrides {@link httpClientFor}'s choice: `undici` or `node`. */
const httpClientVariable = "DIRSYNC_HTTP_CLIENT"

/**
 * The HTTP client for a run over `file`: node's own `http` (keep-alive) for inputs under 2 MiB, undici's dispatcher
 * for larger ones. Undici is 1.4 MB of JavaScript to load, about 80 ms of a 1,000-row run; node's `http` is part of
 * node, but on a 1M-row run it cost ~10% more main-thread CPU (docs/PERFORMANCE.md, "Fifth round"). The same
 * size decides the heap flags and the CSV worker thread (`internal/inputSize.ts`). `DIRSYNC_HTTP_CLIENT=undici|node`
 * chooses one whatever the size (the drills use it to attack both); another value is a usage error.
 *
 * @since 0.3.0
 * @category constructors
 */
export const httpClientFor = Effect.fnUntraced(function*(file: string) {
  const chosen = yield* Config.option(Config.String(httpClientVariable)).pipe(Effect.mapError(refusal))
  const name = Option.getOrUndefined(chosen)?.trim() || (isSmall(fileBytes(file)) ? "node" : "undici")
  if (name === "node") return NodeHttpClient.layerNodeHttpOptions({ keepAlive: true })
  if (name === "undici") return NodeHttpClient.layerUndici
  return yield* CliExit.usage(`${httpClientVariable} must be "undici" or "node", not ${JSON.stringify(name)}`)
})

// =============================================================================
// WeCom
// =============================================================================

/** A WeCom layer served by an in-process emulator (`--sandbox`), with the emulator's credentials as configuration. */
const wecomEmulated = <A, E, R>(
  layer: Layer.Layer<A, E, R>,
  wecomTesting: typeof WeComTesting,
  directory: WeComTesting.Directory
) =>
  layer.pipe(
    Layer.provide([wecomTesting.layerHttpClient(directory), RateLimit.layerMemory]),
    Layer.provide(emulatorConfig({
      [wecomVariables.id]: directory.corpId,
      [wecomVariables.secret]: directory.secret,
      [wecomVariables.baseUrl]: "http://127.0.0.1"
    }))
  )

/**
 * The WeCom school-contacts target for these flags. `seed` pre-creates what the input mentions in a sandbox.
 *
 * @since 0.2.0
 * @category constructors
 */
export const wecom = Effect.fnUntraced(function*<R>(options: {
  readonly flags: Flags
  /** The input file: its size chooses the HTTP client ({@link httpClientFor}). */
  readonly file: string
  readonly counters: Progress.Counters
  readonly concurrency: number
  readonly seed: (directory: WeComTesting.Directory) => Effect.Effect<void, CliExit.CliExit, R>
}) {
  const { flags } = options
  const faults = yield* parseFaults(flags.faults)
  const tokens = new Set<string>()
  const clientOptions = {
    ...clientOptionsOf(flags, options.counters, tokens, WeComClient.defaultRateLimit),
    concurrency: options.concurrency
  }
  if (flags.dryRun) {
    // The client's own check, as a real run would apply it; no client is built.
    const label = flags.sandbox
      ? "sandbox"
      : yield* labelOf(wecomVariables.baseUrl, WeComClient.defaultBaseUrl, WeComClient.checkBaseUrl)
    return none<SchoolContacts.SchoolContacts>(label)
  }
  const service = SchoolContacts.layer.pipe(Layer.provide(WeComClient.layerConfig(clientOptions)))
  if (flags.sandbox) {
    const wecomTesting = yield* load.wecomTesting
    const directory = wecomTesting.make({ faults })
    yield* options.seed(directory)
    return {
      kind: "sandbox",
      label: "sandbox",
      layer: targetLayer(wecomEmulated(service, wecomTesting, directory)),
      secrets: () => [directory.secret, ...directory.issuedTokens()]
    } satisfies Target<SchoolContacts.SchoolContacts>
  }
  const { secret } = yield* credentials(wecomVariables)
  return {
    kind: "real",
    label: yield* labelOf(wecomVariables.baseUrl, WeComClient.defaultBaseUrl, WeComClient.checkBaseUrl),
    layer: targetLayer(service.pipe(Layer.provide([yield* httpClientFor(options.file), RateLimit.layerMemory]))),
    secrets: () => [Redacted.value(secret), ...tokens]
  } satisfies Target<SchoolContacts.SchoolContacts>
})

// =============================================================================
// Feishu
// =============================================================================

/**
 * The Feishu departments target for these flags.
 *
 * @since 0.2.0
 * @category constructors
 */
export const feishu = Effect.fnUntraced(function*(options: {
  readonly flags: Flags
  /** The input file: its size chooses the HTTP client ({@link httpClientFor}). */
  readonly file: string
  readonly counters: Progress.Counters
  readonly departments: Departments.Options
}) {
  const { flags } = options
  const faults = yield* parseFaults(flags.faults)
  const feishuClient = yield* load.feishuClient
  const tokens = new Set<string>()
  const clientOptions = clientOptionsOf(flags, options.counters, tokens, feishuClient.defaultRateLimit)
  if (flags.dryRun) {
    // The client's own check, as a real run would apply it; no client is built.
    const label = flags.sandbox
      ? "sandbox"
      : yield* labelOf(feishuVariables.baseUrl, feishuClient.defaultBaseUrl, feishuClient.checkBaseUrl)
    return none<Departments.Departments>(label)
  }
  const departments = yield* load.departments
  const service = departments.layer(options.departments).pipe(Layer.provide(feishuClient.layerConfig(clientOptions)))
  if (flags.sandbox) {
    const feishuTesting = yield* load.feishuTesting
    const directory = feishuTesting.make({ faults })
    const layer = service.pipe(
      Layer.provide(feishuTesting.layerHttpClient(directory)),
      Layer.provide(emulatorConfig({
        [feishuVariables.id]: directory.appId,
        [feishuVariables.secret]: directory.appSecret,
        [feishuVariables.baseUrl]: "http://127.0.0.1"
      }))
    )
    return {
      kind: "sandbox",
      label: "sandbox",
      layer: targetLayer(layer),
      secrets: () => [directory.appSecret, ...directory.issuedTokens()]
    } satisfies Target<Departments.Departments>
  }
  const { secret } = yield* credentials(feishuVariables)
  return {
    kind: "real",
    label: yield* labelOf(feishuVariables.baseUrl, feishuClient.defaultBaseUrl, feishuClient.checkBaseUrl),
    layer: targetLayer(service.pipe(Layer.provide(yield* httpClientFor(options.file)))),
    secrets: () => [Redacted.value(secret), ...tokens]
  } satisfies Target<Departments.Departments>
})

const none = <S>(label: string): Target<S> => ({ kind: "none", label, layer: undefined, secrets: () => [] })

// =============================================================================
// WeCom school sync (issue 18)
// =============================================================================

/**
 * The target of `dirsync wecom plan`, `apply` and `sync`: one client serving both the reads
 * (`SchoolDirectory.read`) and the batch endpoints (`SchoolContacts`), so they share its token, retries and rate
 * limit; and the corp it reaches (`WECOM_CORP_ID`, or the sandbox's), which a plan file records and `apply` checks.
 * There is no dry-run kind: a plan is the dry run.
 *
 * @since 0.3.0
 * @category models
 */
export interface SchoolTarget {
  readonly kind: "real" | "sandbox"
  readonly label: string
  readonly corpId: string
  readonly layer: Layer.Layer<SchoolContacts.SchoolContacts | WeComClient.WeComClient, CliExit.CliExit>
  readonly secrets: () => ReadonlyArray<string>
}

/**
 * The WeCom school target for these flags. `seed` fills a `--sandbox` emulator before the first call; `file` (a
 * roster file, when there is one) chooses the HTTP client ({@link httpClientFor}).
 *
 * @since 0.3.0
 * @category constructors
 */
export const wecomSchool = Effect.fnUntraced(function*<R>(options: {
  readonly flags: Pick<Flags, "sandbox" | "faults" | "rate">
  readonly file: string | undefined
  readonly counters: Progress.Counters
  readonly concurrency: number
  readonly seed: (directory: WeComTesting.Directory) => Effect.Effect<void, CliExit.CliExit, R>
}) {
  const { flags } = options
  const faults = yield* parseFaults(flags.faults)
  const tokens = new Set<string>()
  const clientOptions = {
    ...clientOptionsOf(flags, options.counters, tokens, WeComClient.defaultRateLimit),
    concurrency: options.concurrency
  }
  const client = WeComClient.layerConfig(clientOptions)
  const both = Layer.merge(SchoolContacts.layer.pipe(Layer.provide(client)), client)
  if (flags.sandbox) {
    const wecomTesting = yield* load.wecomTesting
    const directory = wecomTesting.make({ faults })
    yield* options.seed(directory)
    return {
      kind: "sandbox",
      label: "sandbox",
      corpId: directory.corpId,
      layer: targetLayer(wecomEmulated(both, wecomTesting, directory)),
      secrets: () => [directory.secret, ...directory.issuedTokens()]
    } satisfies SchoolTarget
  }
  const { id, secret } = yield* credentials(
    wecomVariables,
    "try the command with --sandbox (an in-process emulator)"
  )
  return {
    kind: "real",
    label: yield* labelOf(wecomVariables.baseUrl, WeComClient.defaultBaseUrl, WeComClient.checkBaseUrl),
    corpId: id,
    layer: targetLayer(
      both.pipe(
        Layer.provide([
          options.file === undefined
            ? NodeHttpClient.layerNodeHttpOptions({ keepAlive: true })
            : yield* httpClientFor(options.file),
          RateLimit.layerMemory
        ])
      )
    ),
    secrets: () => [Redacted.value(secret), ...tokens]
  } satisfies SchoolTarget
})

// =============================================================================
// Feishu department sync (issue 19)
// =============================================================================

/**
 * The target of `dirsync feishu plan`, `apply` and `sync`: one client serving both the read (`DepartmentTree.read`)
 * and the writes (`DepartmentWrites`), so they share its token, retries and per-API rate limits; and the app it
 * reaches (`FEISHU_APP_ID`, or the sandbox's), which a plan file records and `apply` checks. `--sandbox` is an
 * in-process emulator of an empty tenant: a plan made against it creates the file's whole tree.
 *
 * @since 0.4.0
 * @category models
 */
export interface FeishuTreeTarget {
  readonly kind: "real" | "sandbox"
  readonly label: string
  readonly appId: string
  readonly layer: Layer.Layer<DepartmentWrites.DepartmentWrites | FeishuClient.FeishuClient, CliExit.CliExit>
  readonly secrets: () => ReadonlyArray<string>
}

/**
 * The Feishu department target for these flags; `file` (the departments file, when there is one) chooses the HTTP
 * client ({@link httpClientFor}).
 *
 * @since 0.4.0
 * @category constructors
 */
export const feishuTree = Effect.fnUntraced(function*(options: {
  readonly flags: Pick<Flags, "sandbox" | "faults" | "rate">
  readonly file: string | undefined
  readonly counters: Progress.Counters
}) {
  const { flags } = options
  const faults = yield* parseFaults(flags.faults)
  const [feishuClient, departmentWrites] = yield* Effect.all([load.feishuClient, load.departmentWrites])
  const tokens = new Set<string>()
  const client = feishuClient.layerConfig(
    clientOptionsOf(flags, options.counters, tokens, feishuClient.defaultRateLimit)
  )
  const both = Layer.merge(departmentWrites.layer().pipe(Layer.provide(client)), client)
  if (flags.sandbox) {
    const feishuTesting = yield* load.feishuTesting
    const directory = feishuTesting.make({ faults })
    return {
      kind: "sandbox",
      label: "sandbox",
      appId: directory.appId,
      layer: targetLayer(
        both.pipe(
          Layer.provide(feishuTesting.layerHttpClient(directory)),
          Layer.provide(emulatorConfig({
            [feishuVariables.id]: directory.appId,
            [feishuVariables.secret]: directory.appSecret,
            [feishuVariables.baseUrl]: "http://127.0.0.1"
          }))
        )
      ),
      secrets: () => [directory.appSecret, ...directory.issuedTokens()]
    } satisfies FeishuTreeTarget
  }
  const { id, secret } = yield* credentials(feishuVariables, "try the command with --sandbox (an in-process emulator)")
  return {
    kind: "real",
    label: yield* labelOf(feishuVariables.baseUrl, feishuClient.defaultBaseUrl, feishuClient.checkBaseUrl),
    appId: id,
    layer: targetLayer(
      both.pipe(
        Layer.provide(
          options.file === undefined
            ? NodeHttpClient.layerNodeHttpOptions({ keepAlive: true })
            : yield* httpClientFor(options.file)
        )
      )
    ),
    secrets: () => [Redacted.value(secret), ...tokens]
  } satisfies FeishuTreeTarget
})
