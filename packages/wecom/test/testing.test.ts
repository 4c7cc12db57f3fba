import * as Testing from "@dirsync/wecom/testing"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"

// =============================================================================
// Mock Helpers
// =============================================================================

const school = (options: Testing.Options = {}) => {
  const dir = Testing.make(options)
  dir.addClasses(1)
  dir.addStudent({ student_userid: "zhangsan", name: "张三", department: [1] })
  return dir
}

/** Calls the handler as a sandbox server would, and parses the JSON reply. */
const call = (dir: Testing.Directory, method: string, url: string, body?: unknown) =>
  dir.handle({ method, url, headers: {}, bodyText: body === undefined ? "" : JSON.stringify(body) }).pipe(
    Effect.map((reply) =>
      reply === "drop"
        ? "drop" as const
        : { status: reply.status, json: reply.status === 200 ? JSON.parse(reply.bodyText) : undefined }
    )
  )

const token = (dir: Testing.Directory) =>
  call(dir, "GET", `https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=${dir.corpId}&corpsecret=${dir.secret}`).pipe(
    Effect.map((r) => (r === "drop" ? "" : r.json.access_token as string))
  )

const update = (dir: Testing.Directory, tok: string, students: ReadonlyArray<unknown>) =>
  call(dir, "POST", `/cgi-bin/school/user/batch_update_student?access_token=${tok}`, { students })

/** A grade (10) with class 11, a class 2 seeded by id only, two students and a parent of both. */
const tree = (options: Testing.Options = {}) => {
  const dir = Testing.make(options)
  dir.addDepartment({ id: 10, parentid: 1, name: "一年级", type: 2 })
  dir.addDepartment({ id: 11, parentid: 10, name: "一年级1班", type: 1 })
  dir.addClasses(2)
  dir.addStudent({ student_userid: "zhangsan", name: "张三", department: [11, 2], mobile: "13800000001" })
  dir.addStudent({ student_userid: "lisi", name: "李四", department: [2] })
  dir.addParent({
    parent_userid: "mama",
    mobile: "13900000001",
    children: [{ student_userid: "ZhangSan", relation: "妈妈" }, { student_userid: "lisi", relation: "妈妈" }]
  })
  return dir
}

const read = (dir: Testing.Directory, tok: string, path: string, query: string) =>
  call(dir, "GET", `${path}?access_token=${tok}${query}`).pipe(
    Effect.map((r) => (r === "drop" ? "drop" : r.json ?? r.status))
  )

/** 20 writes under `busy=0.5`, each after a read when `withReads`: the write codes and the reads' codes. */
const writes = (withReads: boolean) =>
  Effect.gen(function*() {
    const dir = tree({ faults: "busy=0.5,seed=3" })
    const tok = yield* token(dir)
    const codes = []
    for (let i = 0; i < 20; i++) {
      if (withReads) yield* read(dir, tok, Testing.PATHS.userList, "&department_id=11")
      const r = yield* update(dir, tok, [{ student_userid: "zhangsan", name: "张三" }])
      codes.push(r !== "drop" && r.json.errcode)
    }
    return { codes, readCodes: dir.calls(Testing.PATHS.userList).map((c) => c.code) }
  })

/** A repeatable random sequence (mulberry32). */
const random = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <A>(xs: ReadonlyArray<A>): A | undefined => (xs.length === 0 ? undefined : xs[int(xs.length)])
  return { int, pick, chance: (p: number) => next() < p }
}

const CLASSES = [11, 12, 13, 14, 15]
const idKey = (id: string) => id.toLowerCase()

/**
 * What `user/list` and `list_parent` of class `id` answer, found by scanning every student and parent in the
 * directory's order: the emulator's answers before it kept an index.
 */
const scanned = (dir: Testing.Directory, id: number) => {
  const students = dir.students()
  const parents = dir.parents()
  const inClass = students.filter((s) => s.department.includes(id))
  const keys = new Set(inClass.map((s) => idKey(s.student_userid)))
  const linksOf = (k: string) =>
    parents.flatMap((p) =>
      p.children.filter((c) => idKey(c.student_userid) === k).map((c) => ({
        parent_userid: p.parent_userid,
        relation: c.relation,
        ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
        is_subscribe: 0
      }))
    )
  return {
    students: inClass.map((s) => ({
      student_userid: s.student_userid,
      name: s.name,
      ...(s.mobile === undefined ? {} : { mobile: s.mobile }),
      department: s.department,
      parents: linksOf(idKey(s.student_userid))
    })),
    parents: parents.filter((p) => p.children.some((c) => keys.has(idKey(c.student_userid)))).map((p) => ({
      parent_userid: p.parent_userid,
      ...(p.mobile === undefined ? {} : { mobile: p.mobile }),
      is_subscribe: 0,
      children: p.children.map((c) => {
        const child = students.find((s) => idKey(s.student_userid) === idKey(c.student_userid))
        return {
          student_userid: child?.student_userid ?? c.student_userid,
          relation: c.relation,
          name: child?.name ?? c.student_userid
        }
      })
    }))
  }
}

/**
 * One random write through WeCom's API (or a seed), as a sync would send it: students created, moved between
 * classes, renamed (sometimes only in case), deleted; parents created, their children replaced, renamed, deleted.
 */
const randomWrite = (dir: Testing.Directory, tok: string, r: ReturnType<typeof random>, n: number) => {
  const post = (path: string, body: unknown) => call(dir, "POST", `${path}?access_token=${tok}`, body)
  const students = dir.students().map((s) => s.student_userid)
  const parents = dir.parents().map((p) => p.parent_userid)
  const classes = () => CLASSES.filter(() => r.chance(0.3)).slice(0, 3)
  const someClasses = () => {
    const picked = classes()
    return picked.length > 0 ? picked : [r.pick(CLASSES)!]
  }
  const children = () =>
    Array.from({ length: 1 + r.int(3) }, () => r.pick(students)).filter((s) => s !== undefined).map((s) => ({
      student_userid: r.chance(0.2) ? s.toUpperCase() : s,
      relation: r.pick(["爸爸", "妈妈", "爷爷"])!
    }))
  const renamed = (id: string) => (r.chance(0.3) ? id.toUpperCase() : `${id}r${n}`)
  switch (r.int(9)) {
    case 0:
      return post(Testing.PATHS.batchCreateStudent, {
        students: [{ student_userid: `s${n}`, name: `生${n}`, department: someClasses() }]
      })
    case 1: {
      const id = r.pick(students)
      if (id === undefined) return Effect.void
      return update(dir, tok, [{
        student_userid: id,
        ...(r.chance(0.7) ? { department: someClasses() } : {}),
        ...(r.chance(0.4) ? { new_student_userid: renamed(id) } : {}),
        ...(r.chance(0.3) ? { name: `改${n}` } : {})
      }])
    }
    case 2: {
      const id = r.pick(students)
      return id === undefined ? Effect.void : post(Testing.PATHS.batchDeleteStudent, { useridlist: [id] })
    }
    case 3:
      return post(Testing.PATHS.batchCreateParent, {
        parents: [{ parent_userid: `p${n}`, mobile: `1390000${String(n).padStart(4, "0")}`, children: children() }]
      })
    case 4: {
      const id = r.pick(parents)
      if (id === undefined) return Effect.void
      return post(Testing.PATHS.batchUpdateParent, {
        parents: [{
          parent_userid: id,
          ...(r.chance(0.7) ? { children: children() } : {}),
          ...(r.chance(0.3) ? { new_parent_userid: renamed(id) } : {})
        }]
      })
    }
    case 5: {
      const id = r.pick(parents)
      return id === undefined ? Effect.void : post(Testing.PATHS.batchDeleteParent, { useridlist: [id] })
    }
    case 6:
      // A seed over an existing student (any case) replaces it in place.
      return Effect.sync(() =>
        dir.addStudent({
          student_userid: r.chance(0.5) ? (r.pick(students) ?? `s${n}`) : `s${n}`,
          name: `种${n}`,
          department: classes()
        })
      )
    case 7:
      return Effect.sync(() =>
        dir.addParent({
          parent_userid: r.chance(0.5) ? (r.pick(parents) ?? `p${n}`) : `p${n}`,
          children: children()
        })
      )
    default: {
      const id = r.pick(students)
      if (id === undefined) return Effect.void
      return post(Testing.PATHS.batchCreateStudent, {
        students: [{ student_userid: id, name: "重复", department: someClasses() }]
      })
    }
  }
}

// =============================================================================
// Tests
// =============================================================================

describe("testing", () => {
  describe("handle", () => {
    it.effect("issues tokens for the right corp and secret only", () =>
      Effect.gen(function*() {
        const dir = school()
        const ok = yield* call(dir, "GET", `/cgi-bin/gettoken?corpid=${dir.corpId}&corpsecret=${dir.secret}`)
        assert.deepInclude(ok, { status: 200 })
        assert.strictEqual(ok !== "drop" && ok.json.expires_in, 7200)
        const badSecret = yield* call(dir, "GET", `/cgi-bin/gettoken?corpid=${dir.corpId}&corpsecret=nope`)
        assert.strictEqual(badSecret !== "drop" && badSecret.json.errcode, 40001)
        const badCorp = yield* call(dir, "GET", `/cgi-bin/gettoken?corpid=other&corpsecret=${dir.secret}`)
        assert.strictEqual(badCorp !== "drop" && badCorp.json.errcode, 40013)
        assert.strictEqual(dir.issuedTokens().length, 1)
      }))

    it.effect("answers 41001 / 40014 / 42001 for a missing, unknown or expired token", () =>
      Effect.gen(function*() {
        const dir = school({ faults: "token-ttl=20" })
        const tok = yield* token(dir)
        const codes = []
        for (const t of ["", "forged", tok]) {
          const r = yield* update(dir, t, [])
          codes.push(r !== "drop" && r.json.errcode)
        }
        yield* TestClock.adjust("20 seconds")
        const expired = yield* update(dir, tok, [])
        codes.push(expired !== "drop" && expired.json.errcode)
        assert.deepStrictEqual(codes, [41001, 40014, 0, 42001])
      }))

    it.effect("refuses \\uXXXX escapes with 40033 and applies raw UTF-8", () =>
      Effect.gen(function*() {
        const dir = school()
        const tok = yield* token(dir)
        const escaped = yield* dir.handle({
          method: "POST",
          headers: {},
          url: `/cgi-bin/school/user/batch_update_student?access_token=${tok}`,
          bodyText: "{\"students\":[{\"student_userid\":\"zhangsan\",\"name\":\"\\u5f20\"}]}"
        })
        assert.include(escaped !== "drop" ? escaped.bodyText : "", "40033")
        yield* update(dir, tok, [{ student_userid: "zhangsan", name: "张" }])
        assert.strictEqual(dir.student("zhangsan")?.name, "张")
      }))

    it.effect("rejects the whole request (40058) for one over-length field or more than 100 items", () =>
      Effect.gen(function*() {
        const dir = school()
        dir.addStudent({ student_userid: "lisi", name: "李四" })
        const tok = yield* token(dir)
        const r = yield* update(dir, tok, [{ student_userid: "lisi", name: "新" }, {
          student_userid: "zhangsan",
          name: "张".repeat(33)
        }])
        assert.strictEqual(r !== "drop" && r.json.errcode, 40058)
        assert.strictEqual(dir.student("lisi")?.name, "李四", "nothing applied")
        const many = Array.from({ length: 101 }, () => ({ student_userid: "lisi" }))
        const r2 = yield* update(dir, tok, many)
        assert.strictEqual(r2 !== "drop" && r2.json.errcode, 40058)
      }))

    it.effect("answers per-item codes in the documented partial-failure shape", () =>
      Effect.gen(function*() {
        const dir = school()
        const tok = yield* token(dir)
        const r = yield* update(dir, tok, [{ student_userid: "ghost", name: "鬼" }, {
          student_userid: "zhangsan",
          name: "新"
        }])
        assert.deepStrictEqual(r !== "drop" && r.json, {
          errcode: 1,
          errmsg: "invalid student_userid: ghost",
          result_list: [{ student_userid: "ghost", errcode: 1, errmsg: "invalid student_userid: ghost" }]
        })
        assert.strictEqual(dir.student("zhangsan")?.name, "新")
      }))

    it.effect("an update keeps the student findable; a rename moves it and keeps its parents' links", () =>
      Effect.gen(function*() {
        const dir = school()
        dir.addStudent({ student_userid: "lisi", name: "李四", department: [1] })
        dir.addParent({ parent_userid: "p1", children: [{ student_userid: "zhangsan", relation: "爸爸" }] })
        dir.addParent({ parent_userid: "p2", children: [{ student_userid: "lisi", relation: "妈妈" }] })
        const tok = yield* token(dir)
        yield* update(dir, tok, [{ student_userid: "ZhangSan", name: "张三丰" }])
        assert.strictEqual(dir.student("zhangsan")?.name, "张三丰")
        assert.strictEqual(dir.students().length, 2)
        yield* update(dir, tok, [{ student_userid: "zhangsan", new_student_userid: "zhangsan2" }])
        assert.isUndefined(dir.student("zhangsan"))
        assert.strictEqual(dir.student("zhangsan2")?.name, "张三丰")
        assert.deepStrictEqual(dir.parent("p1")?.children.map((c) => c.student_userid), ["zhangsan2"])
        assert.deepStrictEqual(dir.parent("p2")?.children.map((c) => c.student_userid), ["lisi"])
        assert.strictEqual(dir.students().length, 2)
      }))

    it.effect("callLogLimit keeps only the latest calls, so a long-running sandbox does not grow without bound", () =>
      Effect.gen(function*() {
        const dir = school({ callLogLimit: 3 })
        const tok = yield* token(dir)
        for (let i = 0; i < 10; i++) yield* update(dir, tok, [{ student_userid: "zhangsan", name: `张${i}` }])
        const kept = dir.calls()
        assert.deepStrictEqual(
          kept.map((c) => (JSON.parse(c.bodyText) as { students: Array<{ name: string }> }).students[0]!.name),
          ["张7", "张8", "张9"]
        )
        // Per path too: only the latest calls are kept.
        assert.strictEqual(dir.calls(Testing.PATHS.batchUpdateStudent).length, 3)
        assert.strictEqual(school().calls().length, 0)
      }))

    it.effect("school/user/get finds a user or answers 60111", () =>
      Effect.gen(function*() {
        const dir = school()
        const tok = yield* token(dir)
        const found = yield* call(dir, "GET", `/cgi-bin/school/user/get?userid=ZHANGSAN&access_token=${tok}`)
        assert.strictEqual(found !== "drop" && found.json.user_type, 1)
        const missing = yield* call(dir, "GET", `/cgi-bin/school/user/get?userid=x&access_token=${tok}`)
        assert.strictEqual(missing !== "drop" && missing.json.errcode, 60111)
      }))
  })

  describe("faults", () => {
    it.effect("latency sleeps on the clock, so TestClock controls it", () =>
      Effect.gen(function*() {
        const dir = school({ faults: "latency=250" })
        const fiber = yield* Effect.forkChild(token(dir))
        yield* TestClock.adjust("249 millis")
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        assert.isAbove((yield* Fiber.join(fiber)).length, 8)
      }))

    it.effect("busy, 5xx and drop affect write calls; busy and 5xx apply nothing, drop applies then loses the reply", () =>
      Effect.gen(function*() {
        const dir = school()
        const tok = yield* token(dir)
        dir.setFaults("busy=1")
        const busy = yield* update(dir, tok, [{ student_userid: "zhangsan", name: "一" }])
        assert.strictEqual(busy !== "drop" && busy.json.errcode, -1)
        dir.setFaults("5xx=1")
        const down = yield* update(dir, tok, [{ student_userid: "zhangsan", name: "二" }])
        assert.strictEqual(down !== "drop" && down.status, 503)
        assert.strictEqual(dir.student("zhangsan")?.name, "张三")
        dir.setFaults("drop=1")
        const dropped = yield* update(dir, tok, [{ student_userid: "zhangsan", name: "三" }])
        assert.strictEqual(dropped, "drop")
        assert.strictEqual(dir.student("zhangsan")?.name, "三")
        const read = yield* call(dir, "GET", `/cgi-bin/school/user/get?userid=zhangsan&access_token=${tok}`)
        assert.strictEqual(read !== "drop" && read.json.errcode, 0, "reads are not faulted")
      }))

    it.effect("rate answers 45009 past N calls per minute per endpoint", () =>
      Effect.gen(function*() {
        const dir = school({ faults: "rate=2" })
        const tok = yield* token(dir)
        const codes = []
        for (let i = 0; i < 3; i++) {
          const r = yield* update(dir, tok, [])
          codes.push(r !== "drop" && r.json.errcode)
        }
        yield* TestClock.adjust("1 minute")
        const next = yield* update(dir, tok, [])
        codes.push(next !== "drop" && next.json.errcode)
        assert.deepStrictEqual(codes, [0, 0, 45009, 0])
      }))

    it.effect("script answers the next write calls with the given codes, in order", () =>
      Effect.gen(function*() {
        const dir = school({ faults: "script=-1;45009" })
        const tok = yield* token(dir)
        const codes = []
        for (let i = 0; i < 3; i++) {
          const r = yield* update(dir, tok, [])
          codes.push(r !== "drop" && r.json.errcode)
        }
        assert.deepStrictEqual(codes, [-1, 45009, 0])
        assert.strictEqual(dir.calls(Testing.PATHS.batchUpdateStudent).length, 3)
      }))

    it.effect("reply faults: noerrcode and foreign apply nothing; cut, truncate and huge apply, then spoil the reply", () =>
      Effect.gen(function*() {
        const dir = school({ faults: "script=noerrcode;foreign;cut;truncate;huge" })
        const tok = yield* token(dir)
        const send = (name: string) =>
          dir.handle({
            method: "POST",
            url: `/cgi-bin/school/user/batch_update_student?access_token=${tok}`,
            headers: {},
            bodyText: JSON.stringify({ students: [{ student_userid: "zhangsan", name }] })
          }).pipe(Effect.map((r) => (r === "drop" ? assert.fail("not a drop") : r)))
        const bare = yield* send("一")
        assert.deepStrictEqual(JSON.parse(bare.bodyText), { errmsg: "ok" })
        const foreign = yield* send("二")
        const list = JSON.parse(foreign.bodyText).result_list as Array<{ student_userid: string }>
        assert.strictEqual(JSON.parse(foreign.bodyText).errcode, 1)
        assert.match(list[0]!.student_userid, /^not-sent-/)
        assert.strictEqual(dir.student("zhangsan")?.name, "张三", "nothing applied")
        const cut = yield* send("三")
        assert.strictEqual(cut.cutAfter, 0)
        assert.strictEqual(dir.student("zhangsan")?.name, "三")
        const truncated = yield* send("四")
        assert.isAbove(truncated.cutAfter!, 0)
        assert.isBelow(truncated.cutAfter!, truncated.bodyText.length)
        const huge = yield* send("五")
        assert.strictEqual(huge.padBytes, 512 * 1024 * 1024)
        assert.strictEqual(JSON.parse(huge.bodyText).errcode, 0)
        assert.strictEqual(dir.student("zhangsan")?.name, "五")
      }))
  })

  describe("reads", () => {
    it.effect("department/list answers the tree: the school, the grade, then the classes with their parents", () =>
      Effect.gen(function*() {
        const dir = tree()
        const r = yield* read(dir, yield* token(dir), Testing.PATHS.departmentList, "")
        assert.deepStrictEqual(r.departments, [
          { id: 1, name: "学校", parentid: 0, type: 5 },
          { id: 10, parentid: 1, name: "一年级", type: 2 },
          { id: 11, parentid: 10, name: "一年级1班", type: 1 },
          { id: 2, name: "班级 2", parentid: 1, type: 1 }
        ])
        assert.deepStrictEqual(dir.classes(), [11, 2])
      }))

    it.effect("user/list answers a class's students with their parents embedded; a grade's own list is empty", () =>
      Effect.gen(function*() {
        const dir = tree()
        const tok = yield* token(dir)
        const class11 = yield* read(dir, tok, Testing.PATHS.userList, "&department_id=11")
        assert.deepStrictEqual(class11, {
          errcode: 0,
          errmsg: "ok",
          students: [{
            student_userid: "zhangsan",
            name: "张三",
            mobile: "13800000001",
            department: [11, 2],
            parents: [{ parent_userid: "mama", relation: "妈妈", mobile: "13900000001", is_subscribe: 0 }]
          }]
        })
        const class2 = yield* read(dir, tok, Testing.PATHS.userList, "&department_id=2")
        assert.deepStrictEqual(class2.students.map((s: { student_userid: string }) => s.student_userid), [
          "zhangsan",
          "lisi"
        ])
        const grade = yield* read(dir, tok, Testing.PATHS.userList, "&department_id=10")
        assert.deepStrictEqual(grade.students, [], "the API does not recurse")
        dir.omitEmbeddedParents(11)
        const omitted = yield* read(dir, tok, Testing.PATHS.userList, "&department_id=11")
        assert.notProperty(omitted.students[0], "parents")
      }))

    it.effect("list_parent answers the parents with a child in the department, each with every child", () =>
      Effect.gen(function*() {
        const dir = tree()
        const tok = yield* token(dir)
        const r = yield* read(dir, tok, Testing.PATHS.parentList, "&department_id=11")
        assert.deepStrictEqual(r.parents, [{
          parent_userid: "mama",
          mobile: "13900000001",
          is_subscribe: 0,
          children: [
            { student_userid: "zhangsan", relation: "妈妈", name: "张三" },
            { student_userid: "lisi", relation: "妈妈", name: "李四" }
          ]
        }])
        const grade = yield* read(dir, tok, Testing.PATHS.parentList, "&department_id=10")
        assert.deepStrictEqual(grade.parents, [])
      }))

    it.effect("an unknown department answers 60003, a missing one 40058, a POST 40058; the token is checked first", () =>
      Effect.gen(function*() {
        const dir = tree()
        const tok = yield* token(dir)
        const codes = []
        for (const path of [Testing.PATHS.userList, Testing.PATHS.parentList]) {
          codes.push((yield* read(dir, tok, path, "&department_id=99")).errcode)
          codes.push((yield* read(dir, tok, path, "")).errcode)
          codes.push((yield* read(dir, tok, path, "&department_id=1x")).errcode)
          codes.push((yield* read(dir, "forged", path, "&department_id=11")).errcode)
          const post = yield* call(dir, "POST", `${path}?access_token=${tok}&department_id=11`, {})
          codes.push(post !== "drop" && post.json.errcode)
        }
        assert.deepStrictEqual(codes, [60003, 40058, 40058, 40014, 40058, 60003, 40058, 40058, 40014, 40058])
      }))

    it.effect("scriptReads aims faults at one department and path; denySchoolCalls refuses reads too", () =>
      Effect.gen(function*() {
        const dir = tree()
        const tok = yield* token(dir)
        dir.scriptReads({ departmentId: 2, path: Testing.PATHS.userList }, -1, "http5xx", "drop", 60011)
        const other = yield* read(dir, tok, Testing.PATHS.userList, "&department_id=11")
        const parents = yield* read(dir, tok, Testing.PATHS.parentList, "&department_id=2")
        assert.deepStrictEqual([other.errcode, parents.errcode], [0, 0], "other departments and paths unaffected")
        const answers = []
        for (let i = 0; i < 5; i++) {
          const r = yield* read(dir, tok, Testing.PATHS.userList, "&department_id=2")
          answers.push(typeof r === "object" ? r.errcode : r)
        }
        assert.deepStrictEqual(answers, [-1, 503, "drop", 60011, 0])
        dir.denySchoolCalls(65022)
        assert.strictEqual((yield* read(dir, tok, Testing.PATHS.userList, "&department_id=2")).errcode, 65022)
      }))

    it.effect("random read faults come from their own sequence: a run's write faults stay where they were", () =>
      Effect.gen(function*() {
        const alone = yield* writes(false)
        const mixed = yield* writes(true)
        assert.deepStrictEqual(mixed.codes, alone.codes)
        assert.include(mixed.codes, -1)
        assert.include(mixed.readCodes, -1, "reads meet the spec's busy share too")
        assert.include(mixed.readCodes, 0)
      }))

    it.effect.prop(
      "after any creates, moves, renames and deletes, each class reads as a scan of the whole directory does",
      [Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 30 }))],
      ([seed]) =>
        Effect.gen(function*() {
          const dir = Testing.make()
          dir.addClasses(...CLASSES)
          const tok = yield* token(dir)
          const r = random(seed)
          for (let n = 0; n < 60; n++) {
            yield* randomWrite(dir, tok, r, n)
            if (n % 5 !== 4) continue
            for (const id of CLASSES) {
              const expected = scanned(dir, id)
              const students = yield* read(dir, tok, Testing.PATHS.userList, `&department_id=${id}`)
              assert.deepStrictEqual(students.students, expected.students, `user/list ${id} after write ${n}`)
              const parents = yield* read(dir, tok, Testing.PATHS.parentList, `&department_id=${id}`)
              assert.deepStrictEqual(parents.parents, expected.parents, `list_parent ${id} after write ${n}`)
            }
            // A student's own read lists the parents linked to it, as the class read does.
            for (const s of dir.students()) {
              const got = yield* read(dir, tok, Testing.PATHS.getUser, `&userid=${s.student_userid}`)
              const inList = CLASSES.flatMap((id) => scanned(dir, id).students)
                .find((x) => x.student_userid === s.student_userid)
              if (inList === undefined) continue
              assert.deepStrictEqual(
                got.student.parents,
                inList.parents.map((l) => ({
                  parent_userid: l.parent_userid,
                  relation: l.relation,
                  ...(l.mobile === undefined ? {} : { mobile: l.mobile })
                })),
                `get ${s.student_userid} after write ${n}`
              )
            }
          }
        }),
      { arbitrary: { runs: 40 } }
    )
  })
})
