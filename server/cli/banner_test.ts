import assert from "node:assert/strict";
import { formatBanner, pairingUrl } from "./banner.ts";

Deno.test("the pairing link carries the token in the fragment, and only where a web app is served", () => {
  assert.equal(pairingUrl("http://127.0.0.1:8765", "all", "a b"), "http://127.0.0.1:8765/#token=a%20b");
  assert.equal(pairingUrl("http://0.0.0.0:1", "web", null), "http://127.0.0.1:1/");
  assert.equal(pairingUrl("http://127.0.0.1:8765", "http", "t"), null);
});

Deno.test("the banner lists models or says exactly how to pull one", () => {
  const base = {
    version: "1.2.3",
    mode: "all",
    url: "http://127.0.0.1:8765",
    pairingUrl: "http://127.0.0.1:8765/#token=t",
    suggestedModel: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
  };
  const none = formatBanner({ ...base, models: [] });
  assert.match(none, /TabAgent 1\.2\.3 is running \(mode all\)/);
  assert.match(none, /Docs +http:\/\/127\.0\.0\.1:8765\/api-doc/);
  assert.match(none, /Web app +http:\/\/127\.0\.0\.1:8765\/#token=t/);
  assert.match(none, /Models +none yet: tabagent models pull Qwen\/Qwen2\.5-0\.5B-Instruct-GGUF/);
  const some = formatBanner({ ...base, models: [{ id: "a/b", sizeBytes: 98_000_000 }, { id: "c/d", sizeBytes: 2e9 }] });
  assert.match(some, /Models +a\/b \(98 MB\)\n +c\/d \(2\.0 GB\)/);
  assert.equal(some.includes("\x1b["), false);
});
