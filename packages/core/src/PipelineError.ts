/**
 * Why `BatchPipeline.run` stopped a run on its own account, not a vendor's: an input that broke the pipeline's
 * contract, a run limit that was reached (the circuit breaker, the deadline), or outcomes that do not add up.
 *
 * **Details**
 *
 * - `InputContract`: the input stream is read once per pass and must give the same rows each time (re-readable, as a
 *   Stream over a file, or spooled); row numbers are unique; at most `maxRows` rows; dependency levels are whole
 *   numbers from 0. Detected before the offending rows are sent.
 * - `CircuitBreaker`, `Deadline`: the run stopped sending. Chunks in flight settled first, and every row still has
 *   its one outcome: rows never sent are `skipped` (`Aborted`, `DeadlineReached`), never blamed on the vendor.
 * - `Outcomes`: the run ended with a different number of outcomes than the rows it planned. A defect, reported
 *   loudly rather than as a success.
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.2.0
 * @category errors
 */
export class PipelineError extends Schema.TaggedError<PipelineError>()("PipelineError", {
  kind: Schema.Literals(["InputContract", "CircuitBreaker", "Deadline", "Outcomes"]),
  message: Schema.String
}) {}

/**
 * @since 0.2.0
 * @category guards
 */
export const isPipelineError = (u: unknown): u is PipelineError => u instanceof PipelineError
