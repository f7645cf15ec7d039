import { Context } from "effect"

/**
 * The summary-job item a piece of work is for: set around the item's summary by the job worker and
 * read where ledger rows are made, so each upstream call of a job names its item.
 */
export class CurrentJobItem extends Context.Tag("CurrentJobItem")<CurrentJobItem, { readonly id: string }>() {}
