/** Simulated time units per tick: message delays are a few units, well under a heartbeat. */
export const TICK_UNITS = 10;
