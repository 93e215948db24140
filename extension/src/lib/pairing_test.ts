import assert from "node:assert/strict";
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
  assert.equal(adoptTokenFromFragment(f.location, f.storage, f.history), "abc+def");
  assert.equal(f.replaced[0], "/?x=1");
  const again = fakes("");
  again.storage.setItem("tabagent.token", "kept");
  assert.equal(adoptTokenFromFragment(again.location, again.storage, again.history), "kept");
  assert.equal(again.replaced.length, 0);
});
