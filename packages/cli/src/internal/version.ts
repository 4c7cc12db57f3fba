/**
 * The released version, in a module of its own so that `dirsync --version` can answer before the CLI loads
 * (`bin.ts`). `Cli.version` re-exports it; `test/Cli.test.ts` keeps it equal to package.json (a JSON import would
 * pull package.json outside `rootDir` into the published build).
 *
 * @internal
 */
export const version = "0.1.0"
