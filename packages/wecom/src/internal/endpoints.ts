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
  /** `GET ?userid=`: one student or parent, or 60111. */
  getUser: "/cgi-bin/school/user/get",
  /** `GET [?id=]`: the school's department tree (read-only; needs the app's 家校通讯录 permission). */
  departmentList: "/cgi-bin/school/department/list"
} as const
