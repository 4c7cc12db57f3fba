/**
 * The signal that stopped the process, recorded by `bin.ts` as it arrives: the exit code is 128 + its number, as
 * shells report it (130 for SIGINT, 143 for SIGTERM), and the runner's `--json` object says the same code.
 */
let received: "SIGINT" | "SIGTERM" | undefined

/** Records the first signal received. */
export const record = (signal: "SIGINT" | "SIGTERM"): void => {
  received ??= signal
}

/** The exit code of an interrupted run: 143 after SIGTERM, else 130 (SIGINT, or an interruption without a signal). */
export const exitCode = (): number => (received === "SIGTERM" ? 143 : 130)
