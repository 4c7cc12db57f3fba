/**
 * The test entry point, `@dirsync/feishu/testing`: the in-memory Feishu directory (`make`), its in-process
 * `HttpClient` (`layerHttpClient`) and a `FeishuClient` wired to it (`layerClient`). The same module is reachable as
 * the `FeishuMock` namespace of `@dirsync/feishu`.
 *
 * @since 0.1.0
 */
export * from "./FeishuMock.ts"
