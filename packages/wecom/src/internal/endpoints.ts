/**
 * The WeCom API paths this package calls: one table shared by the client, the service and the emulator.
 *
 * @internal
 */
export const PATHS = {
  /** `GET ?corpid=&corpsecret=`: the access token. */
  token: "/cgi-bin/gettoken",
  batchUpdateStudent: "/cgi-bin/school/user/batch_update_student",
  batchUpdateParent: "/cgi-bin/school/user/batch_update_parent",
  /** `POST {students}` (≤ 100): creates students (doc 92328 / 92037). */
  batchCreateStudent: "/cgi-bin/school/user/batch_create_student",
  /** `POST {useridlist}` (≤ 100): deletes students without parents (doc 92040). */
  batchDeleteStudent: "/cgi-bin/school/user/batch_delete_student",
  /** `POST {parents}` (≤ 100): creates parents (doc 92078). */
  batchCreateParent: "/cgi-bin/school/user/batch_create_parent",
  /** `POST {useridlist}` (≤ 100): deletes parents (doc 92080). */
  batchDeleteParent: "/cgi-bin/school/user/batch_delete_parent",
  /** `GET ?userid=`: one student or parent, or 60111. */
  getUser: "/cgi-bin/school/user/get",
  /** `GET [?id=]`: the school's department tree (read-only; needs the app's 家校通讯录 permission). */
  departmentList: "/cgi-bin/school/department/list",
  /** `GET ?department_id=`: one department's students, their parents embedded (doc 92043; does not recurse). */
  userList: "/cgi-bin/school/user/list",
  /** `GET ?department_id=`: one department's parents with their children (doc 96741; does not recurse). */
  parentList: "/cgi-bin/school/user/list_parent"
} as const
