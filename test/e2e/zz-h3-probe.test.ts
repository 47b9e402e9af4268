import { it } from "node:test";
import { authorizedFetch } from "./api-token.ts";
import { ProcessCluster, waitFor } from "./node-processes.ts";
it("probe", { timeout: 30000 }, async () => {
  const c = await ProcessCluster.create(1);
  try {
    const url = `http://127.0.0.1:${c.spec("n1").httpPort}`;
    c.start("n1", { standalone: true, unnamed: true });
    await waitFor("leader", 10000, async () => ((await c.status("n1"))?.role === "leader" ? true : null));
    await new Promise((r) => setTimeout(r, 1500));
    console.log("STANDALONE", await (await authorizedFetch(`${url}/v1/cluster/status`)).text());
    c.signal("n1", "SIGTERM");
    await c.node("n1").exited;
    const n = c.start("n1", { bootstrapAlone: true });
    await waitFor("leader", 10000, async () => ((await c.status("n1"))?.role === "leader" ? true : null));
    await new Promise((r) => setTimeout(r, 1500));
    console.log("CLUSTER", await (await authorizedFetch(`${url}/v1/cluster/status`)).text());
    console.log("STATUS", JSON.stringify(await c.status("n1")));
    console.log(n.output.filter((l) => /adopt|standalone/.test(l)).join("\n"));
    c.signal("n1", "SIGTERM");
    await c.node("n1").exited;
    const u = c.start("n1", { standalone: true, unnamed: true });
    console.log("UNNAMED AGAIN", JSON.stringify(await u.exited), u.output.join("\n"));
  } finally { await c.killAll(); }
});
