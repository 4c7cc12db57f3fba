/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time per area (effect, csv-parse, the dirsync packages,
 * node internals such as undici/http, GC, idle) and the top functions by self time. Used by `pnpm bench -- B1
 * --profile`; also runnable alone: `node bench/cpuprofile.ts FILE.cpuprofile`.
 */
import { readFileSync } from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

export interface Summary {
  readonly totalMs: number
  readonly areas: ReadonlyArray<{ readonly area: string; readonly ms: number; readonly share: number }>
  readonly functions: ReadonlyArray<{ readonly name: string; readonly ms: number; readonly share: number }>
}

const areaOf = (url: string, fn: string): string => {
  if (url === "") {
    if (fn === "(garbage collector)") return "GC"
    if (fn === "(idle)") return "idle"
    if (fn === "(program)") return "V8/native (program)"
    return `native ${fn}`
  }
  if (url.includes("/effect/") || url.includes("/effect@")) return "effect"
  if (url.includes("@effect/platform-node")) return "@effect/platform-node"
  if (url.includes("csv-parse")) return "csv-parse"
  const pkg = /packages\/(core|wecom|feishu|cli)\/src\//.exec(url)
  if (pkg) return `@dirsync/${pkg[1]}`
  if (url.includes("undici")) return "node: undici (fetch)"
  if (url.startsWith("node:")) return `node: ${url.slice(5).replace(/^internal\//, "").split("/")[0]}`
  return url
}

export const summarise = (path: string, top = 15): Summary => {
  const profile = JSON.parse(readFileSync(path, "utf8")) as Profile
  const byId = new Map<number, ProfileNode>()
  for (const node of profile.nodes) byId.set(node.id, node)
  const selfMs = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000)
  }
  let total = 0
  const areas = new Map<string, number>()
  const functions = new Map<string, number>()
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)
    if (node === undefined) continue
    total += ms
    const { functionName, url, lineNumber } = node.callFrame
    const area = areaOf(url, functionName)
    areas.set(area, (areas.get(area) ?? 0) + ms)
    const file = url.replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, "").replace(/^.*\/packages\//, "")
    const name = url === "" ? functionName : `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`
    functions.set(name, (functions.get(name) ?? 0) + ms)
  }
  const ranked = (m: Map<string, number>) =>
    [...m].toSorted((a, b) => b[1] - a[1]).map(([k, ms]) => ({ k, ms, share: total > 0 ? ms / total : 0 }))
  return {
    totalMs: total,
    areas: ranked(areas).map(({ k, ms, share }) => ({ area: k, ms, share })),
    functions: ranked(functions).slice(0, top).map(({ k, ms, share }) => ({ name: k, ms, share }))
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`

export const format = (title: string, s: Summary, areaCount = 10): string => {
  const lines = [`${title}: ${(s.totalMs / 1000).toFixed(1)} s sampled`, "  self time by area:"]
  for (const a of s.areas.slice(0, areaCount)) lines.push(`    ${pct(a.share)}  ${a.area}`)
  lines.push("  top functions by self time:")
  for (const f of s.functions) lines.push(`    ${pct(f.share)}  ${f.name}`)
  return lines.join("\n")
}

if (import.meta.main) {
  for (const file of process.argv.slice(2)) console.log(format(file, summarise(file)))
}
