/** The steps a primary reports for a forwarded write it served, in order (what the trace tests expect). */
export const primaryStepsOfForwardedWrite: readonly string[] = [
  "received",
  "proposed",
  "log write started",
  "log written",
  "committed",
  "applied",
  "answered",
];
