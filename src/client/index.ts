/** The TypeScript client of the Conclave HTTP API. */
export {
  type ClientOptions,
  ConclaveClient,
  type Consistency,
  type KeyValue,
  type ReadOptions,
  type SqlValue,
  type Statement,
  type WatchEvent,
} from "./conclave-client.ts";
