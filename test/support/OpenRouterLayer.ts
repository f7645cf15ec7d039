import { Layer } from "effect"
import { OpenRouter } from "../../src/llm/OpenRouter.js"
import { Scrubber } from "../../src/llm/Scrubber.js"
import { UpstreamPool } from "../../src/llm/UpstreamPool.js"

/** The real OpenRouter client with what the composition root gives it: the scrubber and the connection pool. */
export const openRouter = OpenRouter.pipe(Layer.provide([Scrubber.layer, UpstreamPool.layer]))
