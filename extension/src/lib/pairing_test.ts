import { equal } from "node:assert/strict";
import { adoptTokenFromFragment } from "./pairing.ts";

function fakes(hash: string) {
  const store = new Map<string, string>();
  const replaced: string[] = [];
  const location = { hash, pathname: "/", search: "?x=1" };
  const storage = {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
  };
  const history = { replaceState: (_s: unknown, _t: string, url: string) => void replaced.push(url) };
  return { location, storage, history, replaced };
}

Deno.test("the pairing link's token moves to sessionStorage and leaves the address bar", () => {
  const f = fakes("#token=abc%2Bdef");
  equal(adoptTokenFromFragment(f.location, f.storage, f.history), "abc+def");
  equal(f.replaced[0], "/?x=1");
  const again = fakes("");
  again.storage.setItem("tabagent.token", "kept");
  equal(adoptTokenFromFragment(again.location, again.storage, again.history), "kept");
  equal(again.replaced.length, 0);
});
