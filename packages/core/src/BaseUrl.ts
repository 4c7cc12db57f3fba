/**
 * The one base-URL policy both vendor clients and the CLI apply: `https`, or plain `http` only to a loopback host
 * (a local sandbox), so a mistyped `http://qyapi.weixin.qq.com` can never send a secret or a token in clear text; and
 * no user name or password in the URL (`https://user:pass@host`), which would be printed wherever the URL is shown.
 * A refusal never echoes a credential.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/**
 * `localhost`, `::1` and 127.0.0.0/8.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isLoopback = (hostname: string): boolean =>
  hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)

/**
 * Why `raw` is refused as a base URL, or `undefined` when it is fine.
 *
 * @since 0.1.0
 * @category validation
 */
export const problem = (raw: string): string | undefined => {
  if (!URL.canParse(raw)) return `${JSON.stringify(withoutUserinfo(raw))} is not a URL`
  const url = new URL(raw)
  // Checked first, so no later message quotes the URL with its credentials.
  if (url.username.length > 0 || url.password.length > 0) {
    return "must not carry a user name or password (user:pass@); the app's credentials belong in their own " +
      "variables, and a URL is printed where a secret must never appear"
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `must use https, got ${url.protocol}`
  if (url.search.length > 0 || url.hash.length > 0) return "must not carry a query string or fragment"
  if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    return `must use https: plain http is refused for ${url.hostname}, as tokens and secrets would travel ` +
      "unencrypted (http is allowed only for loopback hosts: 127.0.0.0/8, localhost, ::1)"
  }
  return undefined
}

/** `raw` with its authority's userinfo hidden, for messages about a URL that does not parse. */
const withoutUserinfo = (raw: string): string => raw.replace(/\/\/[^/?#]*@/, "//<hidden>@")

/**
 * The URL as the clients prepend it: without a trailing slash. Call after {@link problem} found none.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalize = (raw: string): string => new URL(raw).href.replace(/\/+$/, "")

/**
 * {@link problem} as a Schema, for `Config.schema`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BaseUrl = Schema.String.pipe(Schema.check(Schema.makeFilter((s: string) => problem(s) ?? true)))

/**
 * The policy as a configuration check: the base URL without a trailing slash, or a `ConfigError` that names the
 * environment variable it came from (`WECOM_BASE_URL: must use https, …`). Each client checks its base URL with it.
 *
 * @since 0.2.0
 * @category validation
 */
export const check = (variable: string) => (raw: string): Effect.Effect<string, Config.ConfigError> => {
  const refused = problem(raw)
  return refused === undefined
    ? Effect.succeed(normalize(raw))
    : Effect.fail(new Config.ConfigError(new ConfigProvider.SourceError({ message: `${variable}: ${refused}` })))
}
