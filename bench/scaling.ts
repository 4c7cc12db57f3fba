/**
 * Capacity model of a dirsync fleet doing one full WeCom sync of many school tenants (corps): a deterministic
 * discrete-event simulation in virtual time (no sleeping, no I/O) checked against a closed form. Prints markdown
 * tables for docs/SCALING.md and a plain-text account of the model.
 *   node bench/scaling.ts [--tenants 10000] [--students 3000] [--ips 4] [--runners <ips>] [--latency-ms 150]
 *     [--concurrency-per-tenant 2] [--activity-overhead-ms 20] [--runner-aps 75] [--workflows-per-runner 20]
 *
 * Model: a tenant's sync is 1 `gettoken` + ceil(students / 100) batch calls, all on one API path (worst case); each
 * vendor call is one workflow activity. Tenants go round-robin over runners (standing in for hashing); runner r sends
 * from egress IP r mod ips and runs `workflows-per-runner` tenants at once, each with `concurrency-per-tenant` calls
 * in flight. An activity waits for its runner (FIFO, `runner-aps` activities/s: assumed CPU/Postgres-bound, not
 * latency-bound, once many workflows run), spends the overhead, waits for its IP's per-API sliding-window limiter
 * (< limit calls in any 60 s and any 3600 s; all runners on the IP share it), then takes `latency-ms`.
 *
 * Sources: ≤100 students per batch call; 10,000/min + 150,000/h per corp per API; 20,000/min + 600,000/h per IP per
 * API (service providers 40,000/min + 1,200,000/h); token 7200 s: /work/shared/docs/vendor-wecom.md §1, §2, §4, §7
 * (WeCom doc 90454, 2023-08-28; limits changed several times). 2 calls in flight per corp: dirsync's choice, WeCom
 * publishes no concurrency limit (the 45033 threshold is inferred). 20 ms/activity ("pg 20.1 ms per activity",
 * sequential): scale-out.md §9; 38 chunk activities/s per runner: B6 (`bench/server.ts`, dirsync's own chunks of 100
 * rows through the Tenant entity, one runner and Postgres on one 2-core VM; the recipe's bare 0 ms activities did
 * 60–90/s). Per-IP budget shared behind NAT: scale-out.md §8.
 */
import { parseArgs } from "node:util"

const defaults = {
  tenants: 10000,
  students: 3000,
  ips: 4,
  runners: 0,
  "latency-ms": 150,
  "concurrency-per-tenant": 2,
  "activity-overhead-ms": 20,
  "runner-aps": 38,
  "workflows-per-runner": 20
}
type Flag = keyof typeof defaults
const flags = Object.keys(defaults) as Array<Flag>
const { values } = parseArgs({ options: Object.fromEntries(flags.map((f) => [f, { type: "string" as const }])) })
const arg = (f: Flag, min = 1): number => {
  const raw = values[f], x = raw === undefined ? defaults[f] : Number(raw)
  if (!Number.isFinite(x) || x < min) throw new Error(`--${f} must be a number >= ${min}, got ${String(raw)}`)
  return x
}

type Limit = { readonly perMin: number; readonly perHour: number }
const SELF_BUILT: Limit = { perMin: 20_000, perHour: 600_000 }
const PROVIDER: Limit = { perMin: 40_000, perHour: 1_200_000 }
const BATCH_MAX = 100

const base = {
  tenants: arg("tenants"),
  students: arg("students"),
  ips: arg("ips"),
  runners: values.runners === undefined ? arg("ips") : arg("runners"), // default: one runner per IP
  latency: arg("latency-ms", 0) / 1000,
  conc: arg("concurrency-per-tenant"),
  overhead: arg("activity-overhead-ms", 0) / 1000,
  aps: arg("runner-aps"),
  wf: arg("workflows-per-runner"),
  limit: SELF_BUILT
}
type Params = typeof base
const chunks = (p: Params) => Math.ceil(p.students / BATCH_MAX)
const usedIps = (p: Params) => Math.min(p.ips, p.runners) // a runner has exactly one egress IP

type Result = { wall: number; peakMin: number; avgMin: number; tokenPeakMin: number } // busiest IP, batch API

/** Peak count of sorted times `t[0..n)` in any window of `w` seconds. */
const peak = (t: Float64Array, n: number, w: number): number => {
  let best = 0
  for (let i = 0, j = 0; i < n; i++) {
    while (t[j]! <= t[i]! - w + 1e-9) j++ // window (t - w, t]; epsilon for float error
    best = Math.max(best, i - j + 1)
  }
  return best
}

function simulate(p: Params): Result {
  const R = p.runners, I = usedIps(p), C = chunks(p), W = Math.min(p.wf, Math.ceil(p.tenants / R))
  const left = Array.from({ length: R }, (_, r) => Math.floor(p.tenants / R) + (r < p.tenants % R ? 1 : 0))
  const runnerFree = new Float64Array(R)
  const perIp = Array.from({ length: I }, (_, ip) => left.reduce((s, n, r) => s + (r % I === ip ? n : 0), 0))
  const times = perIp.map((n) => [new Float64Array(n), new Float64Array(n * C)]) // [ip][0 = gettoken, 1 = batch]
  const count = perIp.map(() => [0, 0])
  // workflow slot s = r * W + j runs one tenant at a time: batch calls issued and done for it
  const issued = new Int32Array(R * W), done = new Int32Array(R * W)
  const heap: Array<[number, number]> = [] // binary min-heap of call completions [time, slot]
  const push = (e: [number, number]) => {
    let i = heap.push(e) - 1
    for (let up = (i - 1) >> 1; i > 0 && heap[up]![0] > e[0]; i = up, up = (i - 1) >> 1) heap[i] = heap[up]!
    heap[i] = e
  }
  const pop = (): [number, number] => {
    const top = heap[0]!, last = heap.pop()!
    if (heap.length === 0) return top
    let i = 0
    for (let c = 1; c < heap.length; i = c, c = 2 * i + 1) {
      if (c + 1 < heap.length && heap[c + 1]![0] < heap[c]![0]) c++
      if (heap[c]![0] >= last[0]) break
      heap[i] = heap[c]!
    }
    heap[i] = last
    return top
  }
  const issue = (s: number, api: 0 | 1, now: number) => {
    const r = Math.floor(s / W), ip = r % I
    const start = Math.max(now, runnerFree[r]!)
    runnerFree[r] = start + 1 / p.aps
    const arr = times[ip]![api]!, n = count[ip]![api]!
    let send = start + p.overhead
    if (n > 0) send = Math.max(send, arr[n - 1]!) // FIFO at the IP limiter keeps arr sorted
    if (n >= p.limit.perMin) send = Math.max(send, arr[n - p.limit.perMin]! + 60)
    if (n >= p.limit.perHour) send = Math.max(send, arr[n - p.limit.perHour]! + 3600)
    arr[n] = send
    count[ip]![api] = n + 1
    if (api === 1) issued[s]!++
    push([send + p.latency, s])
  }
  const startTenant = (s: number, now: number) => {
    const r = Math.floor(s / W)
    if (left[r] === 0) return
    left[r]!--
    issued[s] = 0
    done[s] = 0
    issue(s, 0, now) // gettoken first
  }
  for (let s = 0; s < R * W; s++) startTenant(s, 0)
  let wall = 0
  while (heap.length > 0) {
    const [now, s] = pop()
    if (issued[s] === 0) { // token arrived: open up to `conc` chunks
      for (let k = 0; k < Math.min(p.conc, C); k++) issue(s, 1, now)
    } else if (++done[s]! === C) {
      wall = Math.max(wall, now)
      startTenant(s, now)
    } else if (issued[s]! < C) issue(s, 1, now)
  }
  let busiest = 0
  count.forEach((c, ip) => c[1]! > count[busiest]![1]! && (busiest = ip))
  return {
    wall,
    peakMin: peak(times[busiest]![1]!, count[busiest]![1]!, 60),
    avgMin: count[busiest]![1]! / (wall / 60),
    tokenPeakMin: Math.max(...times.map((t, ip) => peak(t[0]!, count[ip]![0]!, 60)))
  }
}

/** Closed form: the slowest of runner throughput, per-tenant latency and the IP budget (steady rate, no ramp-up). */
function closedForm(p: Params): { wall: number; binds: string } {
  const C = chunks(p), acts = C + 1, I = usedIps(p)
  const k = Math.ceil(p.runners / I), n = Math.ceil(p.tenants / p.runners) // worst runner / IP
  const latencyBound = Math.min(p.wf, n) * acts / ((1 + Math.ceil(C / p.conc)) * (p.latency + p.overhead))
  const rate = Math.min(p.aps, latencyBound), ipCalls = n * C * k
  const binds = rate === p.aps ? "runner throughput" : "tenant latency × concurrency"
  if (ipCalls > p.limit.perHour) { // hour window binds on long runs: steady 600k/h (approximate)
    const ipRate = Math.min(p.limit.perMin / 60, p.limit.perHour / 3600) / k * acts / C
    if (ipRate < rate) return { wall: n * acts / ipRate, binds: "IP budget (hourly)" }
  }
  const burst = k * rate * C / acts // batch calls/s from the runners behind one IP
  if (burst * 60 <= p.limit.perMin) return { wall: n * acts / rate, binds }
  // sliding window: each minute the IP sends its budget as fast as its runners go, then waits out the minute
  const m = Math.ceil(ipCalls / p.limit.perMin) - 1
  return { wall: m * 60 + (ipCalls - m * p.limit.perMin) / burst, binds: "IP budget" }
}

const dur = (sec: number): string => {
  const t = Math.round(sec)
  return t < 60 ? `${sec.toFixed(1)} s` : `${Math.floor(t / 60)} min ${String(t % 60).padStart(2, "0")} s`
}
const int = (x: number) => Math.round(x).toLocaleString("en-US")

const row = (label: string, p: Params): string => {
  const sim = simulate(p), cf = closedForm(p)
  const pct = (100 * sim.peakMin / p.limit.perMin).toFixed(0)
  return `| ${label} | ${p.runners} | ${usedIps(p)} | ${p.limit.perMin.toLocaleString("en-US")} | ${dur(sim.wall)} | ` +
    `${dur(cf.wall)} | ${int(sim.peakMin)} (${pct}%) | ${int(sim.avgMin)} | ${int(sim.tokenPeakMin)} | ${cf.binds} |`
}

console.log(
  `## Full sync: ${int(base.tenants)} tenants × ${int(base.students)} students (${chunks(base)} batch calls + 1 ` +
    `gettoken each), latency ${base.latency * 1000} ms, overhead ${base.overhead * 1000} ms/activity, ` +
    `${base.aps} activities/s per runner, ${base.conc} calls in flight per tenant, ${base.wf} workflows per runner\n`
)
const header = (cols: string) =>
  // "a|b|c" -> markdown header; first column left-aligned, the rest right-aligned
  console.log(`| ${cols.split("|").join(" | ")} |\n|---|${cols.split("|").slice(1).map(() => "---:|").join("")}`)
header(
  "scenario|runners|egress IPs|IP limit/min/API|wall (simulated)|wall (closed form)|" +
    "batch calls/min, busiest IP: peak (% of limit)|average (calls ÷ wall minutes)|gettoken/min peak|binds"
)
console.log(row("as configured", base))
console.log(row("as configured, service provider", { ...base, limit: PROVIDER }))
for (const k of [2, 4, 8, 16]) console.log(row(`${k} runners per NAT IP`, { ...base, runners: base.ips * k }))
console.log(row("16 runners per NAT IP, service provider", { ...base, runners: base.ips * 16, limit: PROVIDER }))

/** Smallest fleet whose simulated wall time is within `target` seconds: own IP per runner, and behind shared NAT. */
function size(target: number, limit: Limit): string {
  const p: Params = { ...base, limit }
  const fits = (runners: number, ipCount: number) => closedForm({ ...p, runners, ips: ipCount }).wall <= target
  let own = 1
  while (!fits(own, own) && own < 100_000) own++
  let ownSim = simulate({ ...p, runners: own, ips: own })
  while (ownSim.wall > target) ownSim = simulate({ ...p, runners: ++own, ips: own })
  const calls = p.tenants * chunks(p) // on the one batch API path
  const perIp = Math.min(limit.perMin * target / 60, limit.perHour * Math.max(1, target / 3600))
  let nat = Math.ceil(calls / perIp)
  let runners = Math.max(own, nat)
  let natSim = simulate({ ...p, runners, ips: nat })
  while (natSim.wall > target) {
    if (natSim.peakMin >= limit.perMin) nat++
    else runners++
    runners = Math.max(runners, nat)
    natSim = simulate({ ...p, runners, ips: nat })
  }
  return `| ${dur(target)} | ${limit.perMin.toLocaleString("en-US")} | ${own} | ${dur(ownSim.wall)} | ${nat} | ` +
    `${runners} | ${dur(natSim.wall)} | ${int(natSim.peakMin)} |`
}
console.log("\n## Fleet needed for one full sync within a target time\n")
header(
  "target|IP limit/min/API|runners, own IP each|wall (simulated)|min egress IPs if runners share NAT|" +
    "runners behind them|wall (simulated)|batch calls/min peak per IP"
)
for (const [t, l] of [[3600, SELF_BUILT], [600, SELF_BUILT], [600, PROVIDER]] as const) console.log(size(t, l))

const cf = closedForm(base), b = simulate(base), C = chunks(base), cycle = base.latency + base.overhead
const [lat, over, corpS] = [base.latency * 1000, base.overhead * 1000, (1 + Math.ceil(C / base.conc)) * cycle]
const ceil = Math.min(base.wf, base.tenants) * (C + 1) / corpS, pct = (100 * b.peakMin / SELF_BUILT.perMin).toFixed(0)
const corpRate = int(base.conc * 60 / cycle),
  ipRunners = Math.floor(SELF_BUILT.perMin / 60 * (C + 1) / C / base.aps + 1)
console.log(`
How the model works
- A tenant's sync = 1 gettoken + ${C} batch calls of <=100 students (documented for batch_update_student; for
  batch_create_student the vendor notes partly infer it). All ${C} use one API path (worst case, e.g. a first sync
  that creates everyone); a create/update mix would split them over two per-API budgets.
- Each vendor call is one workflow activity: runner queue (${base.aps}/s), ${over} ms Postgres overhead, IP limiter,
  ${lat} ms vendor latency. ${base.aps}/s: B6 (bench/server.ts) measured 38 chunk activities/s, 20 ms: the recipe's
  20.1 ms, both on a 2-core VM (Postgres on the same box, 0 ms vendor calls). Assumed: a runner is CPU/Postgres-bound, so ${base.wf} workflows x
  ${base.conc} calls in flight hide the vendor latency (latency ceiling ${ceil.toFixed(0)} activities/s per runner).
  Not measured: many runners on one Postgres; assumed to scale with them.
- Tenants go round-robin over runners (standing in for hashing); runner r sends from IP r mod IPs. The IP limiter
  is an exact sliding window per API (< limit calls in any 60 s and 3600 s) shared by the runners on that IP, so on
  short runs the average per wall-minute can exceed the limit while no 60 s window does.
- Per corp a sync is ${C + 1} calls over >= ${corpS.toFixed(1)} s (${corpRate} calls/min while it runs): the
  per-corp 10,000/min and 150,000/h cannot bind. No WeCom concurrency limit is published (45033 threshold is
  inferred); ${base.conc} in flight per corp is dirsync's choice.
- This fleet: ${cf.binds} binds; a full sync takes ${dur(b.wall)}, busiest IP peaks at ${int(b.peakMin)} batch
  calls/min (${pct}% of 20,000). The IP budget binds from ~${ipRunners} runners of ${base.aps}/s per IP, after which
  each IP sends its 20,000 in a burst and waits out the minute. 600,000/h per IP binds only beyond 30 min at full rate.
- gettoken: once per tenant per sync (no cache). Tokens live 7200 s, so syncs < 2 h apart can reuse them; a historic
  ~300/h per IP gettoken limit (~2017, not current) would make that cache mandatory.`)
