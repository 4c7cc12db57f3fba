/**
 * Drill D5 (adversarial): the shape of one attack. Every file in `drills/attacks/` other than this one exports
 * `attacks: ReadonlyArray<Attack>`; `drills/run.ts` loads them all, runs each in its own work directory, and prints one
 * line per attack. One file per area, so the attacks on input, journal, vendors and the CLI grow side by side.
 *
 * An attack runs the real `dirsync` binary (`runCli` from `../lib.ts`) against a drills sandbox (`startSandbox`, with
 * fault hooks where the class needs them) and asserts what a user would notice: the exit code, every row exactly once
 * in the report, the sandbox's final state (nothing applied twice, nothing claimed applied that was not), no secret in
 * any output (register outputs with `addArtifact` so D4 scans them too), no stack trace (`crashSigns`).
 */
export interface AttackContext {
  /** An empty directory of its own. */
  readonly dir: string
  /** CI size (`--quick`): keep each attack to a few seconds. */
  readonly quick: boolean
  readonly seed: number
  /** Record one broken promise; an attack with no failures held. */
  readonly fail: (text: string) => void
  /** Record a key number or observation printed beside the attack. */
  readonly note: (text: string) => void
}

export interface Attack {
  /** The class in issue 15's list (1–28), or 0 for an attack beyond it. */
  readonly issueClass: number
  /** Short, says what is tried: "second --resume while the first run holds the journal". */
  readonly name: string
  /** The unit test that covers the class at the lowest level, as `package/test/File.test.ts` (for RELIABILITY.md). */
  readonly test: string
  readonly run: (ctx: AttackContext) => Promise<void>
}
