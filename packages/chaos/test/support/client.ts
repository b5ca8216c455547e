import * as Effect from "effect/Effect"
import * as Http from "node:http"
import * as Net from "node:net"

/** What a real node:http client on 127.0.0.1 saw. */
export type Outcome =
  | {
    readonly kind: "response"
    readonly status: number
    readonly headers: Http.IncomingHttpHeaders
    readonly body: string
    /** Set when the body did not arrive in full: the error code, "aborted" or "timeout". */
    readonly bodyError: string | undefined
    /** Milliseconds from the request to the end of the body (or its failure). */
    readonly millis: number
  }
  | { readonly kind: "error"; readonly code: string; readonly millis: number }

export interface Call {
  readonly method?: string
  readonly path?: string
  readonly headers?: Record<string, string>
  readonly body?: unknown
  /** Socket idle timeout in ms: "timeout" when no byte arrives for that long. Default 1000. */
  readonly timeout?: number
}

/** One request with a fresh connection (no agent), as a Promise that never rejects. */
export const callPromise = (port: number, call: Call = {}): Promise<Outcome> =>
  new Promise((resolve) => {
    const start = performance.now()
    const millis = () => performance.now() - start
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body)
    let settled = false
    const settle = (outcome: Outcome) => {
      if (!settled) {
        settled = true
        resolve(outcome)
      }
    }
    const req = Http.request({
      host: "127.0.0.1",
      port,
      method: call.method ?? "GET",
      path: call.path ?? "/",
      agent: false,
      headers: {
        ...(payload === undefined ? {} : { "content-type": "application/json" }),
        ...call.headers
      }
    })
    req.setTimeout(call.timeout ?? 1000, () => {
      req.destroy(Object.assign(new Error("timeout"), { code: "timeout" }))
    })
    // Before the response: the request failed; after it: the body did.
    let onError = (code: string) => settle({ kind: "error", code, millis: millis() })
    req.on("error", (error: NodeJS.ErrnoException) => onError(error.code ?? error.message))
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      const finish = (bodyError: string | undefined) =>
        settle({
          kind: "response",
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          bodyError,
          millis: millis()
        })
      res.on("end", () => finish(undefined))
      res.on("aborted", () => finish("aborted"))
      res.on("error", (error: NodeJS.ErrnoException) => finish(error.code ?? error.message))
      onError = finish
    })
    req.end(payload)
  })

export const call = (port: number, options: Call = {}): Effect.Effect<Outcome> =>
  Effect.promise(() => callPromise(port, options))

/** Whether a TCP connect to the port completes within `ms` (a real timer: a transport check). */
export const connects = (port: number, ms: number): Effect.Effect<"connected" | "refused" | "pending" | string> =>
  Effect.promise(() =>
    new Promise((resolve) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      const timer = setTimeout(() => {
        socket.destroy()
        resolve("pending")
      }, ms)
      socket.once("connect", () => {
        clearTimeout(timer)
        socket.destroy()
        resolve("connected")
      })
      socket.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        resolve(error.code === "ECONNREFUSED" ? "refused" : error.code ?? error.message)
      })
    })
  )
