import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"

export const Index = Schema.Struct({
  service: Schema.String,
  version: Schema.String,
  docs: Schema.String,
  openapi: Schema.String,
  endpoints: Schema.Array(Schema.String)
})

export class IndexApi extends HttpApiGroup.make("index")
  .add(
    HttpApiEndpoint.get("index", "/")
      .addSuccess(Index)
      .annotate(OpenApi.Summary, "Where to start: the API reference and the OpenAPI document")
  )
{}
