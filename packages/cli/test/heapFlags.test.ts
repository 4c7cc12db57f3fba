import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { defaultFlags, defaultHeapFlags, type Launch, relaunchArgv } from "../src/internal/heapFlags.ts"
import { smallInputBytes } from "../src/internal/inputSize.ts"
import { assertExit, csv, dirsync, tempDir } from "./e2eHelpers.ts"

const launch = (args: ReadonlyArray<string>, overrides: Partial<Launch> = {}): Launch => ({
  argv: ["/usr/bin/node", "/opt/dirsync/bin.ts", ...args],
  execArgv: [],
  execPath: "/usr/bin/node",
  env: {},
  platform: "linux",
  cores: 8,
  ...overrides
})

const sync = ["wecom", "students", "update", "students.csv"]

describe("heapFlags", () => {
  it("re-executes roster commands with the heap flags first, keeping node's own flags and every argument", () => {
    assert.deepStrictEqual(relaunchArgv(launch(sync, { execArgv: ["--cpu-prof"] })), [
      "/usr/bin/node",
      ...defaultHeapFlags,
      "--cpu-prof",
      "/opt/dirsync/bin.ts",
      ...sync
    ])
    assert.isDefined(relaunchArgv(launch(["feishu", "departments", "add", "d.csv"])))
  })

  it("keeps V8 to one helper thread on two cores or fewer, and to its default beyond", () => {
    for (const cores of [1, 2]) {
      assert.deepStrictEqual(relaunchArgv(launch(sync, { cores }))?.slice(1, 4), [
        ...defaultHeapFlags,
        "--v8-pool-size=1"
      ])
    }
    assert.notInclude(relaunchArgv(launch(sync, { cores: 3 })) ?? [], "--v8-pool-size=1")
    // Choosing the pool size is choosing the flags: no re-exec, as for the heap flags.
    assert.isUndefined(relaunchArgv(launch(sync, { cores: 2, env: { NODE_OPTIONS: "--v8-pool-size=4" } })))
  })

  it("leaves help, version, the sandbox and the demo to start as they are", () => {
    for (const args of [[], ["--version"], ["--help"], ["sandbox"], ["demo"], [...sync, "--help"], ["wecom", "-h"]]) {
      assert.isUndefined(relaunchArgv(launch(args)), args.join(" "))
    }
  })

  it("runs small inputs in this process on node's defaults, large or unknown ones with the flags", () => {
    assert.isUndefined(relaunchArgv(launch(sync, { inputBytes: 40_000 })))
    assert.isUndefined(relaunchArgv(launch(sync, { inputBytes: smallInputBytes - 1 })))
    assert.isDefined(relaunchArgv(launch(sync, { inputBytes: smallInputBytes })))
    assert.isDefined(relaunchArgv(launch(sync, { inputBytes: undefined })), "no file found: maybe a large one")
    // Flags the user asked for by name are applied whatever the size.
    assert.isDefined(
      relaunchArgv(launch(sync, { inputBytes: 10, env: { DIRSYNC_NODE_FLAGS: "--max-semi-space-size=4" } }))
    )
  })

  it("respects heap sizing the user chose, which also stops a second re-exec", () => {
    assert.isUndefined(relaunchArgv(launch(sync, { execArgv: ["--max-semi-space-size=32"] })))
    assert.isUndefined(relaunchArgv(launch(sync, { env: { NODE_OPTIONS: "--heap_growing_percent=50" } })))
    // After the re-exec, node has taken the flags into execArgv.
    assert.isUndefined(relaunchArgv(launch(sync, { execArgv: [...defaultHeapFlags] })))
  })

  it("takes its flags from DIRSYNC_NODE_FLAGS, and none when it is empty; never re-executes on Windows", () => {
    assert.deepStrictEqual(
      relaunchArgv(launch(sync, { env: { DIRSYNC_NODE_FLAGS: " --max-semi-space-size=4  " } }))?.slice(0, 3),
      ["/usr/bin/node", "--max-semi-space-size=4", "/opt/dirsync/bin.ts"]
    )
    assert.isUndefined(relaunchArgv(launch(sync, { env: { DIRSYNC_NODE_FLAGS: "" } })))
    assert.isUndefined(relaunchArgv(launch(sync, { platform: "win32" })))
  })

  it("runs the real CLI in the same process, with the flags applied, so kill -9 of its pid still stops it", async () => {
    const dir = tempDir()
    try {
      const input = dir.write("students.csv", csv("student_userid,name", ["s1,Alice", "s2,Bob"]))
      // Large enough for the flags: a header and rows of padding past smallInputBytes.
      const rows = Math.ceil(smallInputBytes / 40) + 1
      const large = dir.write(
        "large.csv",
        csv(
          "student_userid,name",
          Array.from({ length: rows }, (_, i) => `${`s${String(i).padStart(19, "0")}`},${"n".repeat(20)}`)
        )
      )
      // A preload that records, for each start of the main thread, its pid and node flags.
      const log = dir.path("starts.log")
      const probe = dir.write(
        "probe.mjs",
        `import { appendFileSync } from "node:fs"\nimport { isMainThread } from "node:worker_threads"\n` +
          `if (isMainThread) appendFileSync(${
            JSON.stringify(log)
          }, JSON.stringify([process.pid, process.execArgv]) + "\\n")\n`
      )
      const starts = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
        dir.write("starts.log", "")
        assertExit(await dirsync(args, { NODE_OPTIONS: `--import=${probe}`, ...env }), 0)
        return readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as [number, Array<string>])
      }

      const relaunched = await starts(["wecom", "students", "update", large, "--dry-run"])
      assert.strictEqual(relaunched.length, 2)
      assert.strictEqual(relaunched[0]![0], relaunched[1]![0], "same pid after the re-exec")
      assert.deepStrictEqual(relaunched[0]![1], [])
      assert.deepStrictEqual(relaunched[1]![1], [...defaultFlags(availableParallelism())])

      assert.strictEqual((await starts(["--version"])).length, 1)
      const small = await starts(["wecom", "students", "update", input, "--dry-run"])
      assert.deepStrictEqual(small.map(([, flags]) => flags), [[]], "a small input starts node once")
      const optedOut = await starts(["wecom", "students", "update", large, "--dry-run"], { DIRSYNC_NODE_FLAGS: "" })
      assert.deepStrictEqual(optedOut.map(([, flags]) => flags), [[]])
    } finally {
      dir.remove()
    }
  })
})
