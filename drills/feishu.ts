/**
 * The org chart of drill D7: a Feishu tenant's department tree (six levels below the root `0`, custom ids, leaders,
 * a few departments with members) and the next version of its departments file, with the churn a reorganisation
 * brings (about 10% of the departments): renames, moves (a whole subtree under another division, a department and its
 * child swapping places, a department moved under a department created in the same plan, the last child moved out of
 * a department that is then deleted), leader changes, new departments (some under new parents), removed departments
 * (empty leaves and empty subtrees), plus one removed department that still has members, which the plan must report
 * and not delete, and two rows whose id Feishu does not know, matched by name under their parent.
 *
 * Besides the sandbox seed and the file, it gives what the drill checks against, computed here and not by the
 * product: the counts `dirsync feishu plan --json` must print (its `summary`) and the tree Feishu must hold once the
 * plan is applied.
 */
import { makeRandom } from "./lib.ts"

// =============================================================================
// Models
// =============================================================================

/** A department as the sandbox is seeded with it, and as `/__state` lists it. */
export interface OrgDepartment {
  readonly id: string
  readonly name: string
  readonly parent_id: string
  readonly leader_user_id?: string | undefined
  readonly member_count?: number | undefined
}

/** A department of the expected final tree: `parent` is the parent's id key (lower case), `0` for the root. */
export interface ExpectedDepartment {
  readonly id: string
  readonly name: string
  readonly parent: string
  readonly leader: string | undefined
  readonly memberCount: number
}

/** The counts `dirsync feishu plan --json` must print (its `summary`, `DepartmentPlan.Summary`). */
export interface FeishuPlanCounts {
  create: number
  rename: number
  move: number
  leader: number
  delete: number
  matchedByName: number
  rejected: number
}

export interface OrgChart {
  /** The sandbox seed: `{ departments }`. */
  readonly seed: { readonly departments: ReadonlyArray<OrgDepartment> }
  readonly departmentsCsv: string
  readonly before: {
    readonly departments: number
    readonly perLevel: ReadonlyArray<number>
    readonly leaders: number
    readonly withMembers: number
  }
  /** The final tree, by id key. */
  readonly expected: ReadonlyMap<string, ExpectedDepartment>
  readonly counts: FeishuPlanCounts
  /** Ids (as the file spells them) the plan creates, and ids (as Feishu spells them) it updates and deletes. */
  readonly createIds: ReadonlyArray<string>
  readonly updateIds: ReadonlyArray<string>
  readonly deleteIds: ReadonlyArray<string>
  /** The removed department with members: reported, never deleted. */
  readonly keptWithMembers: string
  /** What makes this churn interesting, for the drill's result line. */
  readonly notes: {
    readonly subtreeMove: { readonly id: string; readonly size: number }
    readonly swap: readonly [string, string]
    readonly underNew: string
    readonly emptiedThenDeleted: string
    readonly upperCaseRefs: number
    readonly newUnderNew: number
  }
}

// =============================================================================
// Generation
// =============================================================================

const WORDS = [
  "研发",
  "产品",
  "设计",
  "市场",
  "销售",
  "客服",
  "财务",
  "法务",
  "人力",
  "行政",
  "运营",
  "数据",
  "安全",
  "采购"
]
const UNITS = ["", "事业群", "部", "中心", "组", "小组", "项目队"]
const PREFIXES = ["d", "rd", "ops.", "hr_", "fin-", "Mkt"]

const key = (s: string) => s.toLowerCase()
/** A CSV field, quoted when it holds a quote, a comma or a line break. */
const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll("\"", "\"\"")}"` : s)

interface Node {
  /** Feishu's spelling of the id (the file's, for a new department). */
  readonly id: string
  readonly level: number
  readonly name: string
  /** Parent id key (lower case); `0` for the root. */
  readonly parent: string
  readonly leader: string | undefined
  memberCount: number
  // --- the next version ---
  finalName: string
  finalParent: string
  finalLeader: string | undefined
  /** The row writes the leader (a blank leader leaves Feishu's as it is). */
  writesLeader: boolean
  removed: boolean
  isNew: boolean
  /** The row names the department by another id (Feishu has none such): matched by name. */
  fileId: string | undefined
  /** Touched by the churn already: not picked again for a change that could conflict with it. */
  busy: boolean
}

/**
 * A tenant of `n` departments on six levels below the root, and its next departments file. About 2.5% are renamed,
 * 2% moved, 2% get a new leader, 2.5% are added and 1.5% removed (plus the department with members, reported).
 */
export const makeOrgChart = (n: number, seed: number): OrgChart => {
  const random = makeRandom(seed)
  const chance = (p: number) => random.next() < p
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[random.int(0, xs.length - 1)]!
  const shuffle = <A>(xs: Array<A>): Array<A> => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = random.int(0, i)
      ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
    }
    return xs
  }
  let serial = 0
  const nameFor = (level: number) => `${pick(WORDS)}${UNITS[Math.min(level, 6)]}${++serial}`
  let leaderSerial = 0
  const newLeader = () => `u${String(10_000 + ++leaderSerial * 7)}`

  // --- the tree before -------------------------------------------------------------------------------------------
  const perLevel = [
    Math.max(2, Math.round(n * 0.0025)),
    Math.max(4, Math.round(n * 0.0125)),
    Math.round(n * 0.045),
    Math.round(n * 0.125),
    Math.round(n * 0.275)
  ]
  perLevel.push(n - perLevel.reduce((a, b) => a + b, 0))
  const nodes: Array<Node> = []
  const byKey = new Map<string, Node>()
  const levels: Array<Array<Node>> = [[]]
  const add = (node: Node) => {
    nodes.push(node)
    byKey.set(key(node.id), node)
    ;(levels[node.level] ??= []).push(node)
    return node
  }
  let idSerial = 0
  for (let level = 1; level <= 6; level++) {
    for (let i = 0; i < perLevel[level - 1]!; i++) {
      // Every department of a level has a parent on the level above; the first ones of each level take the
      // parents in turn, so no level above is left without children by chance.
      const above = levels[level - 1]!
      const parent = level === 1 ? "0" : key(i < above.length ? above[i]!.id : pick(above).id)
      const id = `${pick(PREFIXES)}${String(++idSerial).padStart(5, "0")}`
      const leader = chance(0.35) ? newLeader() : undefined
      const name = nameFor(level)
      add({
        id,
        level,
        name,
        parent,
        leader,
        memberCount: chance(0.03) ? random.int(1, 40) : 0,
        finalName: name,
        finalParent: parent,
        finalLeader: leader,
        writesLeader: leader !== undefined && chance(0.85),
        removed: false,
        isNew: false,
        fileId: undefined,
        busy: false
      })
    }
  }
  const childrenOf = (k: string) => nodes.filter((x) => !x.isNew && x.parent === k)
  const subtreeOf = (root: Node): Array<Node> => {
    const out: Array<Node> = [root]
    for (let i = 0; i < out.length; i++) out.push(...childrenOf(key(out[i]!.id)))
    return out
  }
  // --- the final tree's structure, checked as the churn is decided ---------------------------------------------
  /** Whether `k` is `ancestor` or lies below it in the final tree. */
  const finalWithin = (k: string, ancestor: string): boolean => {
    for (let x = k, steps = 0; steps <= nodes.length; steps++) {
      if (x === ancestor) return true
      if (x === "0") return false
      x = byKey.get(x)!.finalParent
    }
    throw new Error("the final tree has a cycle")
  }
  const finalDepth = (k: string): number => {
    let depth = 0
    for (let x = k; x !== "0"; depth++) x = byKey.get(x)!.finalParent
    return depth
  }
  const height = (k: string): number => {
    const below = nodes.filter((x) => !x.removed && x.finalParent === k)
    return below.length === 0 ? 0 : 1 + Math.max(...below.map((x) => height(key(x.id))))
  }
  const free = (x: Node) => !x.busy && !x.removed && !x.isNew
  const moveTo = (x: Node, parent: string) => {
    if (finalWithin(parent, key(x.id))) throw new Error(`moving ${x.id} under ${parent} makes a cycle`)
    x.finalParent = parent
    x.busy = true
  }

  // 1. A whole division changes hands: a level-2 department and its subtree move under another level-1 one.
  const l1 = levels[1]!
  const l2 = levels[2]!.filter((x) => childrenOf(key(x.id)).length > 0)
  const subtreeRoot = l2.toSorted((a, b) => subtreeOf(b).length - subtreeOf(a).length)[0]!
  moveTo(subtreeRoot, key(pick(l1.filter((x) => key(x.id) !== subtreeRoot.parent)).id))
  const subtreeSize = subtreeOf(subtreeRoot).length

  // 2. A department and its child swap places: the child takes the parent's place, the parent goes below it.
  const swapCandidates = levels[3]!.filter((x) =>
    free(x) && !finalWithin(key(x.id), key(subtreeRoot.id)) && childrenOf(key(x.id)).some(free)
  )
  const swapParent = pick(swapCandidates)
  const swapChild = pick(childrenOf(key(swapParent.id)).filter(free))
  swapChild.finalParent = swapParent.parent
  swapChild.busy = true
  moveTo(swapParent, key(swapChild.id))

  // 3. The department with members that the file leaves out: reported, not deleted. A leaf whose parent stays.
  const withMembers = pick(nodes.filter((x) => free(x) && x.level >= 4 && childrenOf(key(x.id)).length === 0))
  withMembers.memberCount = random.int(3, 12)
  withMembers.busy = true
  for (let p = withMembers.parent; p !== "0"; p = byKey.get(p)!.parent) byKey.get(p)!.busy = true

  // 4. Removed: empty leaves and empty subtrees (1.5%), and a department whose only remaining child moves out first.
  const removable = (x: Node) =>
    free(x) && x.memberCount === 0 && x.level >= 3 && !finalWithin(key(x.id), key(subtreeRoot.id))
  const emptied = pick(
    levels[5]!.filter((x) => removable(x) && childrenOf(key(x.id)).length >= 1 && childrenOf(key(x.id)).every(free))
  )
  const emptiedChildren = childrenOf(key(emptied.id))
  const stays = emptiedChildren[0]!
  const staysUnder = pick(levels[5]!.filter((x) => free(x) && x !== emptied))
  moveTo(stays, key(staysUnder.id))
  staysUnder.busy = true
  for (const c of emptiedChildren.slice(1)) {
    c.memberCount = 0
    c.removed = true
    c.busy = true
  }
  emptied.removed = true
  emptied.busy = true
  const deleteTarget = Math.max(4, Math.round(n * 0.015))
  const deleted = () => nodes.filter((x) => x.removed).length
  // Small subtrees: a level-5 department with its leaves, all empty.
  for (let tries = 0; deleted() < deleteTarget * 0.4 && tries < 200; tries++) {
    const root = pick(levels[5]!)
    const sub = subtreeOf(root)
    if (sub.length < 2 || sub.length > 4 || !sub.every(removable)) continue
    for (const x of sub) {
      x.removed = true
      x.busy = true
    }
  }
  for (let tries = 0; deleted() < deleteTarget && tries < 10 * n; tries++) {
    const x = pick(levels[6]!)
    if (!removable(x)) continue
    x.removed = true
    x.busy = true
  }

  // 5. New departments (2.5%): under kept departments, and some chains of new ones; one kept department moves under
  //    a new one.
  let newSerial = 0
  const newNode = (parent: string, level: number): Node => {
    const spelt = chance(0.15)
      ? `NEW-${String(++newSerial).padStart(4, "0")}x`
      : `new-${String(++newSerial).padStart(4, "0")}`
    const name = newSerial === 3 ? `${pick(WORDS)}${UNITS[Math.min(level, 6)]}, 北京${++serial}` : nameFor(level)
    const leader = chance(0.3) ? newLeader() : undefined
    return add({
      id: spelt,
      level,
      name,
      parent,
      leader,
      memberCount: 0,
      finalName: name,
      finalParent: parent,
      finalLeader: leader,
      writesLeader: leader !== undefined,
      removed: false,
      isNew: true,
      fileId: undefined,
      busy: true
    })
  }
  const creates = Math.max(6, Math.round(n * 0.025))
  const keptParents = () => nodes.filter((x) => !x.removed && !x.isNew && x.level <= 5 && x !== withMembers)
  let newUnderNew = 0
  const underNewHost = newNode(key(pick(levels[2]!.filter((x) => !x.removed)).id), 3)
  while (nodes.filter((x) => x.isNew).length < creates) {
    const p = pick(keptParents())
    if (chance(0.3)) {
      // A chain: a new department with one to three new children, some with a grandchild.
      const top = newNode(key(p.id), finalDepth(key(p.id)) + 1)
      for (let i = random.int(1, 3); i > 0; i--) {
        const child = newNode(key(top.id), top.level + 1)
        newUnderNew++
        if (chance(0.3)) {
          newNode(key(child.id), child.level + 1)
          newUnderNew++
        }
      }
    } else newNode(key(p.id), finalDepth(key(p.id)) + 1)
  }
  const movedUnderNew = pick(levels[4]!.filter((x) => free(x) && !finalWithin(key(underNewHost.id), key(x.id))))
  moveTo(movedUnderNew, key(underNewHost.id))

  // 6. Other moves (to 2% in all), renames (2.5%), leader changes (2%).
  const kept = () => nodes.filter((x) => !x.removed && !x.isNew)
  const movesTarget = Math.max(6, Math.round(n * 0.02))
  const moved = () => kept().filter((x) => x.finalParent !== x.parent).length
  for (let tries = 0; moved() < movesTarget && tries < 10 * n; tries++) {
    const x = pick(kept())
    if (!free(x) || x.level < 3) continue
    const parent = pick(nodes.filter((p) => !p.removed && p !== withMembers && p.level <= 5))
    const pk = key(parent.id)
    if (pk === x.finalParent || finalWithin(pk, key(x.id))) continue
    if (finalDepth(pk) + 1 + height(key(x.id)) > 25) continue
    moveTo(x, pk)
  }
  const renamesTarget = Math.max(6, Math.round(n * 0.025))
  for (let done = 0, tries = 0; done < renamesTarget && tries < 10 * n; tries++) {
    const x = pick(kept())
    if (x.removed || x === withMembers || x.finalName !== x.name) continue
    x.finalName = chance(0.2) ? `${x.name}（新）` : nameFor(x.level)
    done++
  }
  const leadersTarget = Math.max(6, Math.round(n * 0.02))
  for (let done = 0, tries = 0; done < leadersTarget && tries < 10 * n; tries++) {
    const x = pick(kept())
    if (x.removed || x === withMembers || x.finalLeader !== x.leader) continue
    x.finalLeader = newLeader()
    x.writesLeader = true
    done++
  }

  // 7. Two rows name their department by an id Feishu does not have: matched by name under the same parent, the
  //    department keeps Feishu's id; rows below name it by the file's id.
  const unchanged = (x: Node) =>
    free(x) && x.finalName === x.name && x.finalParent === x.parent && x.finalLeader === x.leader
  const matched = shuffle(kept().filter((x) => unchanged(x) && x.level >= 2 && x.level <= 5)).slice(0, 2)
  for (const x of matched) {
    x.fileId = `${x.id}-v2`
    x.busy = true
  }

  // --- the file ---------------------------------------------------------------------------------------------------
  let upperCaseRefs = 0
  const spell = (id: string) => {
    if (chance(0.01)) {
      upperCaseRefs++
      return id.toUpperCase()
    }
    return id
  }
  const refOf = (parent: string) => {
    if (parent === "0") return "0"
    const p = byKey.get(parent)!
    return spell(p.fileId ?? p.id)
  }
  const lines: Array<string> = []
  for (const x of nodes) {
    if (x.removed || x === withMembers) continue
    const id = x.fileId ?? (x.isNew ? x.id : spell(x.id))
    const leader = x.writesLeader ? (x.finalLeader ?? "") : ""
    lines.push([id, csvField(x.finalName), refOf(x.finalParent), leader].join(","))
  }
  const departmentsCsv = ["id,name,parent_id,leader_user_id", ...shuffle(lines)].join("\n") + "\n"

  // --- what the plan must count, and what Feishu must hold after it -----------------------------------------------
  const counts: FeishuPlanCounts = {
    create: 0,
    rename: 0,
    move: 0,
    leader: 0,
    delete: 0,
    matchedByName: matched.length,
    rejected: 1
  }
  const expected = new Map<string, ExpectedDepartment>()
  const updateIds: Array<string> = []
  const finalNames = new Map<string, string>()
  for (const x of nodes) {
    if (x.removed) {
      counts.delete++
      continue
    }
    if (x.isNew) counts.create++
    else {
      const rename = x.finalName !== x.name
      const move = x.finalParent !== x.parent
      const leader = x.writesLeader && x.finalLeader !== x.leader
      if (rename) counts.rename++
      if (move) counts.move++
      if (leader) counts.leader++
      if (rename || move || leader) updateIds.push(x.id)
    }
    const sibling = `${x.finalParent}\u0000${x.finalName}`
    if (finalNames.has(sibling)) throw new Error(`two departments named ${x.finalName} under ${x.finalParent}`)
    finalNames.set(sibling, x.id)
    expected.set(key(x.id), {
      id: x.id,
      name: x.finalName,
      parent: x.finalParent,
      leader: x.finalLeader,
      memberCount: x.memberCount
    })
  }
  for (const k of expected.keys()) {
    if (finalDepth(k) > 25) throw new Error(`${k} is more than 25 levels deep`)
  }
  const seedDepartments: Array<OrgDepartment> = nodes.filter((x) => !x.isNew).map((x) => ({
    id: x.id,
    name: x.name,
    parent_id: x.parent === "0" ? "0" : byKey.get(x.parent)!.id,
    ...(x.leader === undefined ? {} : { leader_user_id: x.leader }),
    ...(x.memberCount === 0 ? {} : { member_count: x.memberCount })
  }))
  return {
    seed: { departments: seedDepartments },
    departmentsCsv,
    before: {
      departments: seedDepartments.length,
      perLevel,
      leaders: seedDepartments.filter((d) => d.leader_user_id !== undefined).length,
      withMembers: seedDepartments.filter((d) => (d.member_count ?? 0) > 0).length
    },
    expected,
    counts,
    createIds: nodes.filter((x) => x.isNew).map((x) => x.id),
    updateIds,
    deleteIds: nodes.filter((x) => x.removed).map((x) => x.id),
    keptWithMembers: withMembers.id,
    notes: {
      subtreeMove: { id: subtreeRoot.id, size: subtreeSize },
      swap: [swapParent.id, swapChild.id],
      underNew: movedUnderNew.id,
      emptiedThenDeleted: emptied.id,
      upperCaseRefs,
      newUnderNew
    }
  }
}

// =============================================================================
// The check of the final tree
// =============================================================================

/**
 * Compares the sandbox's departments with the expected tree, department by department: the id as Feishu spells it,
 * the name, the parent (by id key), the leader and the member count; nothing missing and nothing else. Returns the
 * number of differences (the first few are reported through `fail`).
 */
export const checkTree = (
  chart: OrgChart,
  departments: ReadonlyArray<OrgDepartment>,
  fail: (text: string) => void
): number => {
  let differences = 0
  const differ = (text: string) => {
    if (differences++ < 8) fail(text)
  }
  const held = new Map<string, OrgDepartment>()
  for (const d of departments) {
    if (held.has(key(d.id))) differ(`the sandbox holds department ${d.id} twice`)
    held.set(key(d.id), d)
  }
  for (const [k, e] of chart.expected) {
    const d = held.get(k)
    if (d === undefined) differ(`department ${e.id} is missing from the sandbox`)
    else if (
      d.id !== e.id || d.name !== e.name || key(d.parent_id) !== e.parent ||
      (d.leader_user_id ?? undefined) !== e.leader || (d.member_count ?? 0) !== e.memberCount
    ) {
      differ(`department ${e.id}: expected ${JSON.stringify(e)}, the sandbox holds ${JSON.stringify(d)}`)
    }
  }
  for (const [k, d] of held) {
    if (!chart.expected.has(k)) differ(`department ${d.id} is in the sandbox, not in the file`)
  }
  if (differences > 8) fail(`… ${differences} differences between the sandbox and the file in all`)
  return differences
}
