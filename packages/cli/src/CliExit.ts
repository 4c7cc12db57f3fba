/**
 * How the CLI ends: an exit code, with the message already printed. Carrying the code on the error (Effect's
 * `Runtime.errorExitCode`) lets `NodeRuntime.runMain` exit with it and without logging a stack trace.
 *
 * Exit codes: 0 everything applied (dry run: everything valid); 3 finished with some rows rejected, failed or
 * skipped; 2 usage or configuration error, nothing sent; 1 aborted (credentials refused, the run could not finish).
 *
 * @since 0.1.0
 */
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category errors
 */
export class CliExit extends Schema.TaggedError<CliExit>()("CliExit", {
  code: Schema.Number,
  /** Printed to stderr by the top-level handler (already free of secrets). Empty when already printed. */
  message: Schema.String,
  /** The `--json` object (with `error`) is already on stdout: the top-level handler prints no second one. */
  json: Schema.optional(Schema.Boolean)
}) {
  override readonly [Runtime.errorExitCode]: number = this.code
  override readonly [Runtime.errorReported] = false
}

/**
 * Usage or configuration error: nothing was sent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const usage = (message: string) => new CliExit({ code: 2, message })

/**
 * The run could not finish.
 *
 * @since 0.1.0
 * @category constructors
 */
export const aborted = (message: string) => new CliExit({ code: 1, message })

/**
 * The run finished, but not every row applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const incomplete = new CliExit({ code: 3, message: "" })
