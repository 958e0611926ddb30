/** Lambda entry: the bus relay (stream → topic, with arbitration). See shared/handlers/relay.ts. */
export { relayHandler as handler } from "../../shared/handlers/relay.ts";
