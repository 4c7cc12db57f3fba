import { VendorError } from "@dirsync/core"
import * as Schema from "effect/Schema"

/** A vendor error as `@dirsync/wecom` or `@dirsync/feishu` declares one. */
export class TestError extends Schema.TaggedError<TestError>()("TestError", VendorError.fields) {}

export const vendorError = (
  code: number,
  retry: VendorError.RetryClass | "unknown",
  options?: { readonly retryAfterMillis?: number; readonly endpoint?: string }
) =>
  new TestError({
    endpoint: options?.endpoint ?? "/test/batch",
    code,
    vendorMessage: `vendor says ${code}`,
    reason: VendorError.reasonFor(retry, { retryAfterMillis: options?.retryAfterMillis })
  })
