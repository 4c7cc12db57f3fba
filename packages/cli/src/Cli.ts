/**
 * The `dirsync` command tree (effect/cli): every subcommand, its flags and its help text.
 *
 * @since 0.1.0
 */
import * as Command from "effect/cli/Command"

/**
 * The released version; `test/Cli.test.ts` keeps it equal to package.json (a JSON import would pull package.json
 * outside `rootDir` into the published build).
 *
 * @since 0.1.0
 * @category constants
 */
export const version = "0.1.0"

/**
 * The root command.
 *
 * @since 0.1.0
 * @category commands
 */
export const root = Command.make("dirsync").pipe(
  Command.withDescription(
    "Push school rosters and org charts into WeCom school contacts and Feishu contacts, safely, at the speed the vendors allow."
  )
)

/**
 * Runs the command tree on `argv` (as `process.argv`, the first two entries are skipped).
 *
 * @since 0.1.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>) => Command.runWith(root, { version })(argv.slice(2))
