/**
 * Shared test helpers: run an effect to completion under `TestClock`, and build the layers a test needs around the
 * in-memory Feishu directory (the HttpClient seam is the mock; the client is always the real one).
 */
import { RateLimit } from "@dirsync/core"
import * as Departments from "@dirsync/feishu/Departments"
import * as FeishuClient from "@dirsync/feishu/FeishuClient"
import * as FeishuTesting from "@dirsync/feishu/testing"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"

/** Forks `self` and moves the TestClock in `step`s until it is done: retries, polls and rate limits run instantly. */
export const settle = <A, E, R>(self: Effect.Effect<A, E, R>, step: Duration.Input = "100 millis") =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(self)
    for (let i = 0; i < 1_000_000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(step)
    return yield* Fiber.join(fiber)
  })

/** No jitter, so retry timings are exact. */
export const retry = { jitter: false } as const

/** The real client over the directory's in-process HttpClient. */
export const clientLayer = (
  directory: FeishuTesting.Directory,
  options: Omit<FeishuClient.Options, "appId" | "appSecret"> = {}
) => FeishuTesting.layerClient(directory, { retry, ...options })

/** The real client over any HttpClient layer (for responses the mock does not produce). */
export const clientOver = (
  http: Layer.Layer<HttpClient.HttpClient>,
  options: Partial<FeishuClient.Options> = {}
) =>
  Layer.effect(
    FeishuClient.FeishuClient,
    FeishuClient.make({ appId: "cli_test", appSecret: Redacted.make("test-secret"), retry, ...options })
  ).pipe(Layer.provide([http, RateLimit.layerMemory]), Layer.orDie)

/** Departments + client over the directory. */
export const departmentsLayer = (directory: FeishuTesting.Directory, options: Departments.Options = {}) =>
  Departments.layer(options).pipe(Layer.provideMerge(clientLayer(directory)))

/**
 * An HttpClient answered by the directory, except for requests `intercept` answers itself (a response, or `"drop"`
 * for a lost connection): for wire shapes the mock does not produce.
 */
export const intercepted = (
  directory: FeishuTesting.Directory,
  intercept: (request: FeishuTesting.MockRequest) => FeishuTesting.MockResponse | "drop" | undefined
): FeishuTesting.Directory => ({
  ...directory,
  handle: (request) => {
    const answer = intercept(request)
    return answer === undefined ? directory.handle(request) : Effect.succeed(answer)
  }
})

/** A JSON response. */
export const jsonResponse = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {}
): FeishuTesting.MockResponse => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  bodyText: JSON.stringify(body)
})

/** The path of a mock request. */
export const pathOf = (request: FeishuTesting.MockRequest): string => new URL(request.url, "http://x").pathname
