/**
 * Worker-thread entry of the CSV reader (`csvJob.ts`): runs the job it was started with and posts its batches to the
 * parent, which answers each with a credit (any message).
 *
 * @internal
 */
import { parentPort, workerData } from "node:worker_threads"
import { credited, type Job, runJob, type WorkerMessage } from "./csvJob.ts"

const port = parentPort!
const { credit, post } = credited((message) => port.postMessage(message))
port.on("message", credit)

const problem = await runJob(workerData as Job, post)
port.postMessage((problem === undefined ? { done: true } : { problem }) satisfies WorkerMessage)
// The port kept the thread alive while it waited for credits; now it may end once the last message is out.
port.unref()
