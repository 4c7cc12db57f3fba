/**
 * Drill D3's malformed input files, generated: each case is one file for one command, the exit code it must end
 * with (2: the file is refused, nothing sent; 3: the bad rows are rejected, the good rows applied), what the message
 * must mention (file position, field, reason), and the ids the sandbox must never receive.
 *
 * Every case uses ids of its own (`cNN-…`), so the sandbox's record of received ids tells which case sent what.
 */

export type Command = "students" | "parents" | "departments"

export interface Case {
  readonly key: string
  readonly title: string
  readonly command: Command
  /** File name, inside the case's own directory. */
  readonly file: string
  readonly content: Buffer | string | { readonly kind: "missing" } | { readonly kind: "directory" }
  readonly exit: 2 | 3
  /** Substrings the user-facing message must contain: stderr for exit 2, the rejected rows' messages for exit 3. */
  readonly mentions: ReadonlyArray<string>
  /** Exit 3: the rows that must be rejected (all others must be applied, except `skipped`). */
  readonly rejected?: ReadonlyArray<number>
  /** Exit 3: rows that must be skipped (their parent was rejected). */
  readonly skipped?: ReadonlyArray<number>
  /** Well-formed ids the file names: seeded in the sandbox (students or parents), so a wrong send would apply. */
  readonly seedStudents?: ReadonlyArray<string>
  readonly seedParents?: ReadonlyArray<string>
  /** Ids the sandbox must never receive (every id of an exit-2 file; the rejected rows' ids of an exit-3 file). */
  readonly neverSent: ReadonlyArray<string>
  /** Part of the `--quick` selection (CI). */
  readonly quick: boolean
}

const STUDENTS = "student_userid,new_student_userid,name,mobile,department"
const PARENTS = "parent_userid,new_parent_userid,mobile,student_userid,relation"
const DEPARTMENTS = "id,name,parent_id,leader_user_id,leader_open_id,create_group_chat"

const lines = (header: string, rows: ReadonlyArray<string>, eol = "\n") => [header, ...rows].join(eol) + eol
const BOM = "\ufeff"
/** "张三" and "李四" in GBK, as Excel saves "CSV (Comma delimited)" on a Chinese Windows. */
const GBK_ZHANGSAN = Buffer.from([0xd5, 0xc5, 0xc8, 0xfd])
const GBK_LISI = Buffer.from([0xc0, 0xee, 0xcb, 0xc4])
const cat = (...parts: ReadonlyArray<string | Buffer>) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p)))

const nested = (depth: number, inner: string) => "[".repeat(depth) + inner + "]".repeat(depth)

export const makeCases = (): ReadonlyArray<Case> => {
  const cases: Array<Case> = []
  let n = 0
  const add = (
    c: Omit<Case, "key" | "neverSent" | "quick"> & { readonly neverSent?: ReadonlyArray<string> }
  ) => {
    const key = `D3.${String(cases.length + 1).padStart(2, "0")}`
    cases.push({ ...c, key, neverSent: c.neverSent ?? [], quick: false })
  }
  const p = () => `c${String(++n).padStart(2, "0")}`

  // ---------------------------------------------------------------------------
  // CSV students: encoding
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "CSV: invalid UTF-8 (GBK) in one cell",
      command: "students",
      file: "gbk-cell.csv",
      content: cat(`${STUDENTS}\n${k}-ok1,,Alice,,1\n${k}-bad,,`, GBK_ZHANGSAN, `,,1\n`),
      exit: 2,
      mentions: ["row 2", "column \"name\"", "UTF-8"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-ok1`, `${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: whole file in GBK (Excel ANSI)",
      command: "students",
      file: "gbk-file.csv",
      content: cat(`${STUDENTS}\n${k}-a,,`, GBK_ZHANGSAN, `,,1\n${k}-b,,`, GBK_LISI, `,,2\n`),
      exit: 2,
      mentions: ["row 1", "UTF-8"],
      seedStudents: [`${k}-a`, `${k}-b`],
      neverSent: [`${k}-a`, `${k}-b`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: invalid UTF-8 in the header",
      command: "students",
      file: "bad-header-bytes.csv",
      content: cat("student_userid,na", Buffer.from([0xff, 0xfe]), `me\n${k}-ok1,Alice\n`),
      exit: 2,
      mentions: ["line 1", "header", "UTF-8"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: truncated UTF-8 sequence at end of file",
      command: "students",
      file: "truncated-utf8.csv",
      content: cat(`${STUDENTS}\n${k}-ok1,,Alice,,1\n${k}-ok2,,Bob,,1`, Buffer.from([0xe5, 0x89])),
      exit: 2,
      mentions: ["row 2", "UTF-8"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`],
      neverSent: [`${k}-ok1`, `${k}-ok2`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: UTF-16LE file (Excel \"Unicode text\")",
      command: "students",
      file: "utf16.csv",
      content: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`${STUDENTS}\n${k}-ok1,,Alice,,1\n`, "utf16le")]),
      exit: 2,
      mentions: ["UTF-8"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }

  // ---------------------------------------------------------------------------
  // CSV students: quoting and shape
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "CSV: unterminated quote",
      command: "students",
      file: "unterminated.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-ok2,,"Bob,,1`, `${k}-ok3,,Carol,,1`]),
      exit: 2,
      mentions: ["row 2", "never closed"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`, `${k}-ok3`],
      neverSent: [`${k}-ok1`, `${k}-ok2`, `${k}-ok3`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: stray quote inside an unquoted value",
      command: "students",
      file: "stray-quote.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-ok2,,Bo"b,,1`]),
      exit: 2,
      mentions: ["line 3", "double quote"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`],
      neverSent: [`${k}-ok1`, `${k}-ok2`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: text after a closing quote",
      command: "students",
      file: "after-quote.csv",
      content: lines(STUDENTS, [`${k}-ok1,,"Ali"ce,,1`]),
      exit: 2,
      mentions: ["line 2", "closing double quote"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a row with an extra cell",
      command: "students",
      file: "extra-cell.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-ok2,,Bob,,1,surplus`]),
      exit: 2,
      mentions: ["row 2", "6 cells", "5 columns"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`],
      neverSent: [`${k}-ok1`, `${k}-ok2`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a row with missing cells",
      command: "students",
      file: "short-row.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-ok2,,Bob,,1`, `${k}-ok3,Carol`]),
      exit: 2,
      mentions: ["row 3", "2 cells"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`, `${k}-ok3`],
      neverSent: [`${k}-ok1`, `${k}-ok2`, `${k}-ok3`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: unknown column",
      command: "students",
      file: "unknown-column.csv",
      content: lines(`${STUDENTS},nickname`, [`${k}-ok1,,Alice,,1,Ali`]),
      exit: 2,
      mentions: ["\"nickname\"", "unknown column"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: the parents layout given to students update",
      command: "students",
      file: "wrong-layout.csv",
      content: lines(PARENTS, [`${k}-p1,,13800000000,${k}-ok1,爸爸`]),
      exit: 2,
      mentions: ["\"parent_userid\"", "unknown column"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`, `${k}-p1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: required column missing",
      command: "students",
      file: "no-id-column.csv",
      content: lines("name,mobile", ["Alice,13800000000"]),
      exit: 2,
      mentions: ["\"student_userid\"", "missing"],
      neverSent: [`${k}-none`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a column named twice",
      command: "students",
      file: "duplicate-column.csv",
      content: lines("student_userid,name,name", [`${k}-ok1,Alice,Alicia`]),
      exit: 2,
      mentions: ["\"name\"", "more than once"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: semicolon-separated (European Excel)",
      command: "students",
      file: "semicolons.csv",
      content: lines(STUDENTS.replaceAll(",", ";"), [`${k}-ok1;;Alice;;1`]),
      exit: 2,
      mentions: ["\";\"", "comma-separated"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: tab-separated",
      command: "students",
      file: "tabs.csv",
      content: lines(STUDENTS.replaceAll(",", "\t"), [`${k}-ok1\t\tAlice\t\t1`]),
      exit: 2,
      mentions: ["tabs"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a header cell with no name",
      command: "students",
      file: "blank-header-cell.csv",
      content: lines("student_userid,,name", [`${k}-ok1,x,Alice`]),
      exit: 2,
      mentions: ["column 2", "no name"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }

  // ---------------------------------------------------------------------------
  // CSV students: empty and oversized
  // ---------------------------------------------------------------------------
  add({
    title: "CSV: empty file (0 bytes)",
    command: "students",
    file: "empty.csv",
    content: "",
    exit: 2,
    mentions: ["empty"]
  })
  p()
  add({
    title: "CSV: header only",
    command: "students",
    file: "header-only.csv",
    content: `${STUDENTS}\n`,
    exit: 2,
    mentions: ["no rows"]
  })
  p()
  add({
    title: "CSV: BOM, CRLF, header only",
    command: "students",
    file: "bom-crlf-header-only.csv",
    content: `${BOM}${STUDENTS}\r\n`,
    exit: 2,
    mentions: ["no rows"]
  })
  p()
  add({
    title: "CSV: blank lines only",
    command: "students",
    file: "blank-lines.csv",
    content: "\n\n\r\n\n",
    exit: 2,
    mentions: ["empty"]
  })
  p()
  add({
    title: "CSV: a single 10 MB line, no newline",
    command: "students",
    file: "ten-mb-line.csv",
    content: "x".repeat(10 * 1024 * 1024),
    exit: 2,
    mentions: ["line 1", "longer than"]
  })
  {
    const k = p()
    add({
      title: "CSV: a 10 MB row after the header",
      command: "students",
      file: "ten-mb-row.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-big,,${"名".repeat(3_500_000)},,1`]),
      exit: 2,
      mentions: ["row 2", "longer than"],
      seedStudents: [`${k}-ok1`, `${k}-big`],
      neverSent: [`${k}-ok1`, `${k}-big`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a 2 MB quoted field with embedded newlines",
      command: "students",
      file: "huge-quoted.csv",
      content: lines(STUDENTS, [`${k}-ok1,,"${"line\n".repeat(400_000)}",,1`]),
      exit: 2,
      mentions: ["row 1", "longer than"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a 5,000-character name (huge field, row-level)",
      command: "students",
      file: "huge-name.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-bad,,${"长".repeat(5000)},,1`]),
      exit: 3,
      rejected: [2],
      mentions: ["name", "5000 characters", "at most 32"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }

  // ---------------------------------------------------------------------------
  // CSV students: field rules
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "CSV: names of 33 characters (CJK, emoji); 32 emoji is fine",
      command: "students",
      file: "name-length.csv",
      content: lines(STUDENTS, [
        `${k}-cjk,,${"张".repeat(33)},,1`,
        `${k}-ok1,,${"😀".repeat(32)},,1`,
        `${k}-emoji,,${"😀".repeat(33)},,1`
      ]),
      exit: 3,
      rejected: [1, 3],
      mentions: ["name", "33 characters", "at most 32"],
      seedStudents: [`${k}-cjk`, `${k}-ok1`, `${k}-emoji`],
      neverSent: [`${k}-cjk`, `${k}-emoji`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: ids with characters WeCom refuses",
      command: "students",
      file: "bad-ids.csv",
      content: lines(STUDENTS, [
        `${k}-ok1,,Alice,,1`,
        `张三${k},,张三,,1`,
        `${k} space,,Bob,,1`,
        `-${k}-lead,,Carol,,1`
      ]),
      exit: 3,
      rejected: [2, 3, 4],
      mentions: ["student_userid", "only digits, letters", "must start with a digit or a letter"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`张三${k}`, `${k} space`, `-${k}-lead`]
    })
  }
  {
    const k = p()
    const long = `${k}-${"x".repeat(62)}`
    add({
      title: "CSV: an id over 64 bytes",
      command: "students",
      file: "long-id.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${long},,Bob,,1`]),
      exit: 3,
      rejected: [2],
      mentions: ["student_userid", "66 UTF-8 bytes", "at most 64"],
      seedStudents: [`${k}-ok1`],
      neverSent: [long]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: an invalid rename target",
      command: "students",
      file: "bad-rename.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-bad,${k} new!,Bob,,1`]),
      exit: 3,
      rejected: [2],
      mentions: ["new_student_userid"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`, `${k} new!`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: class ids that are not numbers",
      command: "students",
      file: "bad-class.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1;2`, `${k}-bad,,Bob,,1;x2`, `${k}-bad2,,Carol,,一班`]),
      exit: 3,
      rejected: [2, 3],
      mentions: ["department", "\"x2\"", "\"一班\""],
      seedStudents: [`${k}-ok1`, `${k}-bad`, `${k}-bad2`],
      neverSent: [`${k}-bad`, `${k}-bad2`]
    })
  }
  {
    const k = p()
    const many = Array.from({ length: 21 }, (_, i) => i + 1).join(";")
    add({
      title: "CSV: 21 classes for one student",
      command: "students",
      file: "too-many-classes.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-bad,,Bob,,${many}`]),
      exit: 3,
      rejected: [2],
      mentions: ["department", "21 items", "at most 20"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: invalid mobile numbers",
      command: "students",
      file: "bad-mobile.csv",
      content: lines(STUDENTS, [
        `${k}-ok1,,Alice,+86-13800000000,1`,
        `${k}-bad,,Bob,138-abc,1`,
        `${k}-bad2,,Carol,${"1".repeat(33)},1`
      ]),
      exit: 3,
      rejected: [2, 3],
      mentions: ["mobile", "138-abc"],
      seedStudents: [`${k}-ok1`, `${k}-bad`, `${k}-bad2`],
      neverSent: [`${k}-bad`, `${k}-bad2`]
    })
  }

  // ---------------------------------------------------------------------------
  // CSV students: duplicates in every case variant, rename collisions
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "CSV: one id in four case variants",
      command: "students",
      file: "dup-case.csv",
      content: lines(STUDENTS, [
        `${k}-ok1,,Alice,,1`,
        `${k}-dup,,A,,1`,
        `${k.toUpperCase()}-DUP,,B,,1`,
        `${k.toUpperCase()}-Dup,,C,,1`,
        `${k}-dUP,,D,,1`
      ]),
      exit: 3,
      rejected: [2, 3, 4, 5],
      mentions: ["student_userid", "also used by", "case-insensitively"],
      seedStudents: [`${k}-ok1`, `${k}-dup`],
      neverSent: [`${k}-dup`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: the same id twice, exactly",
      command: "students",
      file: "dup-exact.csv",
      content: lines(STUDENTS, [`${k}-dup,,A,,1`, `${k}-ok1,,Alice,,1`, `${k}-dup,,A,,1`]),
      exit: 3,
      rejected: [1, 3],
      mentions: ["student_userid", "row 3", "row 1"],
      seedStudents: [`${k}-ok1`, `${k}-dup`],
      neverSent: [`${k}-dup`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a rename onto another row's id (other case)",
      command: "students",
      file: "rename-collision.csv",
      content: lines(STUDENTS, [`${k}-a,${k.toUpperCase()}-B,A,,1`, `${k}-b,,B,,1`]),
      exit: 3,
      rejected: [1],
      mentions: ["new_student_userid", "collide"],
      seedStudents: [`${k}-a`, `${k}-b`],
      neverSent: [`${k}-a`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: two renames onto one target in different case",
      command: "students",
      file: "rename-same-target.csv",
      content: lines(STUDENTS, [`${k}-a,${k}-target,A,,1`, `${k}-b,${k.toUpperCase()}-TARGET,B,,1`, `${k}-ok1,,C,,1`]),
      exit: 3,
      rejected: [1, 2],
      mentions: ["new_student_userid", "rename target"],
      seedStudents: [`${k}-a`, `${k}-b`, `${k}-ok1`],
      neverSent: [`${k}-a`, `${k}-b`, `${k}-target`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a rename to its own id in another case",
      command: "students",
      file: "rename-self.csv",
      content: lines(STUDENTS, [`${k}-self,${k.toUpperCase()}-SELF,A,,1`, `${k}-ok1,,B,,1`]),
      exit: 3,
      rejected: [1],
      mentions: ["new_student_userid", "same id"],
      seedStudents: [`${k}-self`, `${k}-ok1`],
      neverSent: [`${k}-self`]
    })
  }

  // ---------------------------------------------------------------------------
  // CSV students: BOM / CRLF / CR variants
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "CSV: BOM + CRLF, a bad row keeps its row number",
      command: "students",
      file: "bom-crlf.csv",
      content: BOM +
        lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-ok2,,Bob,,2`, `${k}-bad,,${"名".repeat(40)},,1`], "\r\n"),
      exit: 3,
      rejected: [3],
      mentions: ["name", "40 characters"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: BOM + CRLF with an unterminated quote",
      command: "students",
      file: "bom-crlf-quote.csv",
      content: BOM + lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-ok2,,Bob,,2`, `${k}-ok3,,"Carol,,1`], "\r\n"),
      exit: 2,
      mentions: ["row 3", "never closed"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`, `${k}-ok3`],
      neverSent: [`${k}-ok1`, `${k}-ok2`, `${k}-ok3`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: CR-only line ends (classic Mac)",
      command: "students",
      file: "cr-only.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`, `${k}-ok2,,Bob,,2`], "\r"),
      exit: 2,
      mentions: ["header"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`],
      neverSent: [`${k}-ok1`, `${k}-ok2`]
    })
  }
  {
    const k = p()
    add({
      title: "CSV: a BOM in the middle of the file (two files concatenated)",
      command: "students",
      file: "mid-bom.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`]) + BOM + lines(STUDENTS, [`${k}-ok2,,Bob,,1`]),
      exit: 3,
      rejected: [2],
      mentions: ["department", "\"department\" is not a whole-number class id"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`],
      neverSent: [`${BOM}student_userid`, "student_userid"]
    })
  }

  // ---------------------------------------------------------------------------
  // Not a CSV at all
  // ---------------------------------------------------------------------------
  add({
    title: "CSV: a binary file (an .xlsx renamed .csv)",
    command: "students",
    file: "excel.csv",
    content: Buffer.concat([Buffer.from("PK\u0003\u0004\u0014\u0000\u0006\u0000", "latin1"), Buffer.alloc(2048, 0x9c)]),
    exit: 2,
    mentions: ["UTF-8"]
  })
  p()
  add({
    title: "unsupported extension (.xlsx)",
    command: "students",
    file: "students.xlsx",
    content: "student_userid\nc00-x\n",
    exit: 2,
    mentions: ["unsupported file type"]
  })
  p()
  add({
    title: "no extension",
    command: "students",
    file: "students",
    content: "student_userid\nc00-x\n",
    exit: 2,
    mentions: ["unsupported file type"]
  })
  p()
  add({
    title: "missing file",
    command: "students",
    file: "nowhere.csv",
    content: { kind: "missing" },
    exit: 2,
    mentions: ["file not found"]
  })
  p()
  add({
    title: "a directory named .csv",
    command: "students",
    file: "folder.csv",
    content: { kind: "directory" },
    exit: 2,
    mentions: ["not a file"]
  })

  // ---------------------------------------------------------------------------
  // JSON
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "JSON: the parents body given to students update",
      command: "students",
      file: "wrong-key.json",
      content: JSON.stringify({ parents: [{ parent_userid: `${k}-ok1` }] }),
      exit: 2,
      mentions: ["\"parents\"", "expected {\"students\""],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "JSON: an unexpected top-level key",
      command: "students",
      file: "extra-key.json",
      content: JSON.stringify({ students: [{ student_userid: `${k}-ok1`, name: "A" }], access_token: "x" }),
      exit: 2,
      mentions: ["\"access_token\""],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  add({
    title: "JSON: \"students\" is an object, not a list",
    command: "students",
    file: "students-object.json",
    content: JSON.stringify({ students: { student_userid: "c00-x" } }),
    exit: 2,
    mentions: ["field \"students\"", "an object"]
  })
  p()
  add({
    title: "JSON: a bare string",
    command: "students",
    file: "string.json",
    content: "\"student_userid\"",
    exit: 2,
    mentions: ["a string"]
  })
  p()
  add({
    title: "JSON: a bare number",
    command: "students",
    file: "number.json",
    content: "42\n",
    exit: 2,
    mentions: ["a number"]
  })
  p()
  add({
    title: "JSON: nested 100,000 levels deep",
    command: "students",
    file: "deep.json",
    content: nested(100_000, ""),
    exit: 2,
    mentions: ["nested more than"]
  })
  {
    const k = p()
    add({
      title: "JSON: an item nested 40 levels deep",
      command: "students",
      file: "deep-item.json",
      content: JSON.stringify({ students: [{ student_userid: `${k}-ok1` }] }).replace(
        "}]}",
        `, "department": ${nested(40, "1")}}]}`
      ),
      exit: 2,
      mentions: ["nested more than"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "JSON: a syntax error on line 4",
      command: "students",
      file: "syntax.json",
      content: `{"students": [\n  {"student_userid": "${k}-ok1"},\n  {"student_userid": "${k}-ok2"},\n]}\n`,
      exit: 2,
      mentions: ["line 4", "not valid JSON"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`],
      neverSent: [`${k}-ok1`, `${k}-ok2`]
    })
  }
  add({
    title: "JSON: an empty list",
    command: "students",
    file: "empty-list.json",
    content: "{\"students\": []}",
    exit: 2,
    mentions: ["empty"]
  })
  p()
  add({
    title: "JSON: empty file",
    command: "students",
    file: "empty.json",
    content: "",
    exit: 2,
    mentions: ["empty"]
  })
  {
    const k = p()
    add({
      title: "JSON: invalid UTF-8",
      command: "students",
      file: "gbk.json",
      content: cat(`{"students": [\n{"student_userid": "${k}-ok1", "name": "`, GBK_ZHANGSAN, "\"}]}"),
      exit: 2,
      mentions: ["line 2", "UTF-8"],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "JSON: items of the wrong types",
      command: "students",
      file: "wrong-types.json",
      content: JSON.stringify([
        { student_userid: `${k}-ok1`, name: "A" },
        { student_userid: `${k}-b1`, name: 123 },
        { student_userid: `${k}-b2`, department: "1;2" },
        `${k}-b3`,
        null,
        { student_userid: 42 },
        { student_userid: `${k}-b4`, department: [1.5] }
      ]),
      exit: 3,
      rejected: [2, 3, 4, 5, 6, 7],
      mentions: ["name", "department", "item 4", "item 5", "student_userid"],
      seedStudents: [`${k}-ok1`, `${k}-b1`, `${k}-b2`, `${k}-b3`, `${k}-b4`],
      neverSent: [`${k}-b1`, `${k}-b2`, `${k}-b3`, `${k}-b4`, "42"]
    })
  }
  {
    const k = p()
    add({
      title: "JSON: one id in three case variants",
      command: "students",
      file: "dup-case.json",
      content: JSON.stringify({
        students: [
          { student_userid: `${k}-dup`, name: "A" },
          { student_userid: `${k}-ok1`, name: "B" },
          { student_userid: `${k.toUpperCase()}-DUP`, name: "C" },
          { student_userid: `${k}-Dup`, name: "D" }
        ]
      }),
      exit: 3,
      rejected: [1, 3, 4],
      mentions: ["student_userid", "case-insensitively"],
      seedStudents: [`${k}-dup`, `${k}-ok1`],
      neverSent: [`${k}-dup`]
    })
  }
  {
    const k = p()
    add({
      title: "JSON: an unknown (misspelt) field in an item",
      command: "students",
      file: "typo-field.json",
      content: JSON.stringify({
        students: [{ student_userid: `${k}-ok1`, name: "A" }, { student_userid: `${k}-typo`, nmae: "B" }]
      }),
      exit: 3,
      rejected: [2],
      mentions: ["nmae"],
      seedStudents: [`${k}-ok1`, `${k}-typo`],
      neverSent: [`${k}-typo`]
    })
  }
  {
    const k = p()
    add({
      title: "JSON: a user-supplied \"__invalid\" key",
      command: "students",
      file: "reserved-key.json",
      content: JSON.stringify([{ student_userid: `${k}-ok1` }, { student_userid: `${k}-bad`, __invalid: true }]),
      exit: 3,
      rejected: [2],
      mentions: ["__invalid"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "JSON: BOM + CRLF, a bad item keeps its number",
      command: "students",
      file: "bom-crlf.json",
      content: BOM +
        `[\r\n{"student_userid": "${k}-ok1", "name": "A"},\r\n{"student_userid": "${k}-bad", "name": "${
          "x".repeat(33)
        }"}\r\n]\r\n`,
      exit: 3,
      rejected: [2],
      mentions: ["name", "33 characters"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }

  // ---------------------------------------------------------------------------
  // NDJSON
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "NDJSON: a broken line",
      command: "students",
      file: "broken.ndjson",
      content:
        `{"student_userid": "${k}-ok1"}\n{"student_userid": "${k}-bad", "name": "B"\n{"student_userid": "${k}-ok2"}\n`,
      exit: 3,
      rejected: [2],
      mentions: ["line 2", "not valid JSON"],
      seedStudents: [`${k}-ok1`, `${k}-ok2`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "NDJSON: lines that are not objects",
      command: "students",
      file: "not-objects.jsonl",
      content: `{"student_userid": "${k}-ok1"}\n["${k}-b1"]\n42\n"${k}-b2"\nnull\n`,
      exit: 3,
      rejected: [2, 3, 4, 5],
      mentions: ["line 2", "an array", "line 3", "not an object"],
      seedStudents: [`${k}-ok1`, `${k}-b1`, `${k}-b2`],
      neverSent: [`${k}-b1`, `${k}-b2`]
    })
  }
  {
    const k = p()
    add({
      title: "NDJSON: a 10 MB line",
      command: "students",
      file: "ten-mb.ndjson",
      content: `{"student_userid": "${k}-ok1"}\n{"student_userid": "${k}-big", "name": "${
        "x".repeat(10 * 1024 * 1024)
      }"}\n`,
      exit: 2,
      mentions: ["line 2", "longer than"],
      seedStudents: [`${k}-ok1`, `${k}-big`],
      neverSent: [`${k}-ok1`, `${k}-big`]
    })
  }
  add({
    title: "NDJSON: blank lines only",
    command: "students",
    file: "blank.ndjson",
    content: "\n  \n\r\n",
    exit: 2,
    mentions: ["no rows"]
  })
  p()
  {
    const k = p()
    add({
      title: "NDJSON: invalid UTF-8 on line 2",
      command: "students",
      file: "gbk.ndjson",
      content: cat(`{"student_userid": "${k}-ok1"}\n{"student_userid": "${k}-bad", "name": "`, GBK_LISI, "\"}\n"),
      exit: 2,
      mentions: ["line 2", "UTF-8"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-ok1`, `${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "NDJSON: a line nested 50 deep",
      command: "students",
      file: "deep.ndjson",
      content: `{"student_userid": "${k}-ok1"}\n{"student_userid": "${k}-bad", "department": ${nested(50, "1")}}\n`,
      exit: 3,
      rejected: [2],
      mentions: ["line 2", "nested more than"],
      seedStudents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "NDJSON: one id in two case variants, CRLF",
      command: "students",
      file: "dup.jsonl",
      content:
        `{"student_userid": "${k}-dup"}\r\n{"student_userid": "${k}-ok1"}\r\n{"student_userid": "${k.toUpperCase()}-DUP"}\r\n`,
      exit: 3,
      rejected: [1, 3],
      mentions: ["student_userid", "case-insensitively"],
      seedStudents: [`${k}-dup`, `${k}-ok1`],
      neverSent: [`${k}-dup`]
    })
  }

  // ---------------------------------------------------------------------------
  // Parents
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "parents CSV: one parent's rows disagree on mobile",
      command: "parents",
      file: "parents-conflict.csv",
      content: lines(PARENTS, [
        `${k}-ok1,,13800000001,${k}-kid1,妈妈`,
        `${k}-bad,,13800000002,${k}-kid1,爸爸`,
        `${k}-BAD,,13800000003,${k}-kid2,爸爸`
      ]),
      exit: 3,
      rejected: [2],
      mentions: ["mobile", "differs between rows 2 and 3"],
      seedStudents: [`${k}-kid1`, `${k}-kid2`],
      seedParents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "parents CSV: a relation of 11 CJK characters (33 bytes)",
      command: "parents",
      file: "parents-relation.csv",
      content: lines(PARENTS, [`${k}-ok1,,,${k}-kid1,爸爸`, `${k}-bad,,,${k}-kid1,${"爸".repeat(11)}`]),
      exit: 3,
      rejected: [2],
      mentions: ["relation", "33 UTF-8 bytes", "at most 32"],
      seedStudents: [`${k}-kid1`],
      seedParents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    const kids = Array.from({ length: 11 }, (_, i) => `${k}-kid${i}`)
    add({
      title: "parents CSV: 11 children for one parent",
      command: "parents",
      file: "parents-children.csv",
      content: lines(PARENTS, [`${k}-ok1,,,${k}-kid0,妈妈`, ...kids.map((kid) => `${k}-bad,,,${kid},爸爸`)]),
      exit: 3,
      rejected: [2],
      mentions: ["children", "11 items", "at most 10"],
      seedStudents: kids,
      seedParents: [`${k}-ok1`, `${k}-bad`],
      neverSent: [`${k}-bad`]
    })
  }
  {
    const k = p()
    add({
      title: "parents CSV: a child id with a space, a link without relation",
      command: "parents",
      file: "parents-child.csv",
      content: lines(PARENTS, [`${k}-ok1,,,${k}-kid1,妈妈`, `${k}-bad,,,${k} kid,爸爸`, `${k}-bad2,,,${k}-kid1,`]),
      exit: 3,
      rejected: [2, 3],
      mentions: ["student_userid", "relation"],
      seedStudents: [`${k}-kid1`],
      seedParents: [`${k}-ok1`, `${k}-bad`, `${k}-bad2`],
      neverSent: [`${k}-bad`, `${k}-bad2`, `${k} kid`]
    })
  }
  {
    const k = p()
    add({
      title: "parents CSV: the students layout given to parents update",
      command: "parents",
      file: "parents-wrong-layout.csv",
      content: lines(STUDENTS, [`${k}-ok1,,Alice,,1`]),
      exit: 2,
      mentions: ["unknown column", "\"name\""],
      seedStudents: [`${k}-ok1`],
      neverSent: [`${k}-ok1`]
    })
  }
  {
    const k = p()
    add({
      title: "parents JSON: one parent id in two case variants",
      command: "parents",
      file: "parents-dup.json",
      content: JSON.stringify({
        parents: [
          { parent_userid: `${k}-dup`, children: [{ student_userid: `${k}-kid1`, relation: "爸爸" }] },
          { parent_userid: `${k}-ok1`, mobile: "13800000000" },
          { parent_userid: `${k.toUpperCase()}-DUP`, mobile: "13800000001" }
        ]
      }),
      exit: 3,
      rejected: [1, 3],
      mentions: ["parent_userid", "case-insensitively"],
      seedStudents: [`${k}-kid1`],
      seedParents: [`${k}-dup`, `${k}-ok1`],
      neverSent: [`${k}-dup`]
    })
  }

  // ---------------------------------------------------------------------------
  // Feishu departments
  // ---------------------------------------------------------------------------
  {
    const k = p()
    add({
      title: "departments: a parent cycle a → b → c → a, and a child of the cycle",
      command: "departments",
      file: "cycle.csv",
      content: lines(DEPARTMENTS, [
        `${k}-root,根${k},0,,,`,
        `${k}-a,A,${k}-c,,,`,
        `${k}-b,B,${k}-a,,,`,
        `${k}-c,C,${k}-b,,,`,
        `${k}-child,Child,${k}-a,,,`
      ]),
      exit: 3,
      rejected: [2, 3, 4],
      skipped: [5],
      mentions: ["parent_id", "cycle"],
      neverSent: [`${k}-a`, `${k}-b`, `${k}-c`, `${k}-child`]
    })
  }
  {
    const k = p()
    add({
      title: "departments: a department that is its own parent (other case)",
      command: "departments",
      file: "self-parent.csv",
      content: lines(DEPARTMENTS, [`${k}-root,根${k},0,,,`, `${k}-self,Self,${k.toUpperCase()}-SELF,,,`]),
      exit: 3,
      rejected: [2],
      mentions: ["parent_id", "own id"],
      neverSent: [`${k}-self`]
    })
  }
  {
    const k = p()
    add({
      title: "departments: one id in three case variants",
      command: "departments",
      file: "dup-ids.csv",
      content: lines(DEPARTMENTS, [
        `${k}-root,根${k},0,,,`,
        `${k}-dup,D1,${k}-root,,,`,
        `${k.toUpperCase()}-DUP,D2,${k}-root,,,`,
        `${k}-Dup,D3,${k}-root,,,`
      ]),
      exit: 3,
      rejected: [2, 3, 4],
      mentions: ["id", "also used by", "case-insensitive"],
      neverSent: [`${k}-dup`]
    })
  }
  {
    const k = p()
    add({
      title: "departments: two departments with one name under one parent",
      command: "departments",
      file: "dup-names.csv",
      content: lines(DEPARTMENTS, [
        `${k}-root,根${k},0,,,`,
        `${k}-x,教务处,${k}-root,,,`,
        `${k}-y,教务处,${k}-root,,,`
      ]),
      exit: 3,
      rejected: [2, 3],
      mentions: ["name", "教务处"],
      neverSent: [`${k}-x`, `${k}-y`]
    })
  }
  {
    const k = p()
    add({
      title: "departments: create_group_chat \"maybe\", an id with a space, an empty name",
      command: "departments",
      file: "bad-fields.csv",
      content: lines(DEPARTMENTS, [
        `${k}-root,根${k},0,,,`,
        `${k}-chat,Chat,${k}-root,,,maybe`,
        `${k} space,Space,${k}-root,,,`,
        `${k}-noname,,${k}-root,,,`
      ]),
      exit: 3,
      rejected: [2, 3, 4],
      mentions: ["create_group_chat", "\"maybe\"", "id", "name"],
      neverSent: [`${k}-chat`, `${k} space`, `${k}-noname`]
    })
  }
  {
    const k = p()
    add({
      title: "departments: the name column is missing",
      command: "departments",
      file: "no-name-column.csv",
      content: lines("id,parent_id", [`${k}-root,0`]),
      exit: 2,
      mentions: ["\"name\"", "missing"],
      neverSent: [`${k}-root`]
    })
  }
  // The CI selection: one or two files of every kind, about a third of the cases.
  const quickFiles = new Set([
    "gbk-cell.csv",
    "unterminated.csv",
    "unknown-column.csv",
    "empty.csv",
    "header-only.csv",
    "ten-mb-line.csv",
    "huge-name.csv",
    "dup-case.csv",
    "rename-collision.csv",
    "bom-crlf.csv",
    "wrong-key.json",
    "deep.json",
    "syntax.json",
    "wrong-types.json",
    "typo-field.json",
    "broken.ndjson",
    "parents-relation.csv",
    "cycle.csv"
  ])
  return cases.map((c) => ({ ...c, quick: quickFiles.has(c.file) }))
}
