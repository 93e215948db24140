/** Runs the Python ML service's own pytest suite (python-ml/tests) as part of `deno task test`. */
import assert from "node:assert/strict";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

Deno.test("python-ml: pytest passes", async () => {
  const out = await new Deno.Command(`${ROOT}/python-ml/.venv/bin/python`, {
    args: ["-m", "pytest", "-p", "no:cacheprovider", "tests"],
    cwd: `${ROOT}/python-ml`,
    env: { HF_HUB_OFFLINE: "1", PYTHONDONTWRITEBYTECODE: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, text);
  assert.ok(/\d+ passed/.test(text), text);
});
