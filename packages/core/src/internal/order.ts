/**
 * Outcomes in input-row order, whatever order pass 2 produces them in: a reorder buffer over the rows pass 1 saw.
 *
 * **Details**
 *
 * - Pass 2 produces outcomes out of row order in two cases: dependency levels (each level is a pass of its own, so
 *   a child written above its parent in the file comes out after it), and inputs whose rows are not in row order (a
 *   parent merged from several CSV lines is emitted at its last line but numbered by its first). Concurrent chunks
 *   do not reorder anything: the send step keeps their order.
 * - Each outcome is emitted as soon as every smaller row of the plan has been: the buffer holds only outcomes that
 *   arrived ahead of a smaller row, so its memory is proportional to how far out of order they arrive. A deep
 *   department tree whose early rows are deep in the tree holds the outcomes of every later row of the earlier
 *   levels until the level of those early rows has run.
 * - Outcomes that arrive in order cost one comparison and one step of the row bitmap each, and the array they came
 *   in is passed on as it is.
 * - An outcome for a row the plan does not expect (or one already emitted: a row number given twice) passes straight
 *   through: reordering must never lose an outcome. When the stream ends or fails, whatever is still held is
 *   emitted in row order first, so a report of an aborted run keeps every row it reached.
 * - A stream that ends with a row of the plan never emitted, or with more or fewer outcomes than the plan's rows,
 *   then fails with a `PipelineError` (`Outcomes`): every run is checked to account for each row exactly once.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Stream from "effect/Stream"
import type { RowOutcome } from "../Outcome.ts"
import { PipelineError } from "../PipelineError.ts"
import type { RowSet } from "./rowSet.ts"

/**
 * The reorder buffer's state: `push` takes outcomes as they come and returns those now due, in row order.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeReorder = (expected: RowSet) => {
  // The smallest expected row not yet emitted; `undefined` once every expected row has been.
  let due = expected.next(-Infinity)
  const held = new Map<number, RowOutcome>()

  const advance = (out: Array<RowOutcome>) => {
    due = expected.next(due!)
    while (due !== undefined && held.size > 0) {
      const next = held.get(due)
      if (next === undefined) return
      held.delete(due)
      out.push(next)
      due = expected.next(due)
    }
  }

  const push = (outcomes: ReadonlyArray<RowOutcome>): ReadonlyArray<RowOutcome> => {
    let i = 0
    if (held.size === 0) {
      // The in-order path: nothing held, and each outcome is the one due.
      while (i < outcomes.length && outcomes[i]!.row === due) {
        due = expected.next(due)
        i++
      }
      if (i === outcomes.length) return outcomes
    }
    const out: Array<RowOutcome> = outcomes.slice(0, i)
    for (; i < outcomes.length; i++) {
      const outcome = outcomes[i]!
      const row = outcome.row
      if (row === due) {
        out.push(outcome)
        advance(out)
      } else if (due !== undefined && row > due && expected.has(row) && !held.has(row)) {
        held.set(row, outcome)
      } else {
        out.push(outcome)
      }
    }
    return out
  }

  /** Everything still held, in row order: rows the plan expected that never came leave gaps here. */
  const flush = (): ReadonlyArray<RowOutcome> => {
    if (held.size === 0) return []
    const rest = [...held.values()].toSorted((a, b) => a.row - b.row)
    held.clear()
    return rest
  }

  /** The smallest expected row not yet emitted: `undefined` once every one has been. */
  const dueRow = () => due

  return { push, flush, due: dueRow }
}

/**
 * Emits `outcomes` in the order of their rows, each as soon as every smaller row of `expected` has been emitted.
 *
 * @since 0.2.0
 * @category combinators
 */
export const inRowOrder = (expected: RowSet, count: number) =>
<E, R>(
  outcomes: Stream.Stream<RowOutcome, E, R>
): Stream.Stream<RowOutcome, E | PipelineError, R> =>
  Stream.suspend(() => {
    const reorder = makeReorder(expected)
    let emitted = 0
    let missing: number | undefined
    // The promise: one outcome per row. A run that ends otherwise is a defect to report, never a success.
    const check = Stream.suspend(() =>
      emitted === count && missing === undefined ? Stream.empty : Stream.fail(
        new PipelineError({
          kind: "Outcomes",
          message: `the run planned ${count} row(s) and reported ${emitted} outcome(s)${
            missing === undefined ? "" : `; row ${missing} has none`
          }`
        })
      )
    )
    return outcomes.pipe(
      Stream.mapAccumArray(() => reorder, (state, chunk) => {
        const out = state.push(chunk)
        emitted += out.length
        return [state, out]
      }, {
        onHalt: (state) => {
          missing = state.due()
          const rest = state.flush()
          emitted += rest.length
          return rest
        }
      }),
      (s) => Stream.concat(s, check),
      Stream.catchCause((cause) =>
        // Interrupted, nobody is listening any more: only a failure deserves what was held.
        Cause.hasInterruptsOnly(cause)
          ? Stream.failCause(cause)
          : Stream.concat(Stream.fromArray(reorder.flush()), Stream.failCause(cause))
      )
    )
  })
