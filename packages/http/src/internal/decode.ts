import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as HttpError from "../HttpError.js"
import { isReplayable } from "./replayable.js"


/** @internal */
export const schemaBodyJson = <A, I, R>(schema: Schema.Schema<A, I, R>, dependency: string) => {
  const decode = Schema.decodeUnknown(schema, { errors: "all" })
  return (response: HttpClientResponse.HttpClientResponse): Effect.Effect<A, HttpError.DecodeError, R> => {
    const request = response.request
    let url = request.url
    try {
      const parsed = new URL(request.url)
      url = parsed.origin + parsed.pathname
    } catch {
      // a relative URL stays as it is
    }
    const fail = (reason: string) =>
      new HttpError.DecodeError({
        dependency,
        method: request.method,
        url,
        sent: "maybe",
        replayable: isReplayable(request),
        status: response.status,
        reason
      })
    return response.text.pipe(
      Effect.mapError((error) => fail(error.message)),
      Effect.flatMap((text) =>
        Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => fail(`not JSON: ${e instanceof Error ? e.message : String(e)}`) })
      ),
      Effect.flatMap((json) =>
        Effect.mapError(decode(json), (error) => fail(ParseResult.TreeFormatter.formatErrorSync(error)))
      )
    )
  }
}
