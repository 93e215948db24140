import assert from "node:assert/strict";
import { buildManifest, HOST_NAME, installHost, launcherScript, manifestDir } from "./mod.ts";

Deno.test("manifest folders per browser and platform", () => {
  const env = { HOME: "/home/ann" };
  assert.equal(manifestDir("chrome", "linux", env), "/home/ann/.config/google-chrome/NativeMessagingHosts");
  assert.equal(manifestDir("chromium", "linux", env), "/home/ann/.config/chromium/NativeMessagingHosts");
  assert.equal(manifestDir("edge", "linux", env), "/home/ann/.config/microsoft-edge/NativeMessagingHosts");
  assert.equal(
    manifestDir("brave", "linux", env),
    "/home/ann/.config/BraveSoftware/Brave-Browser/NativeMessagingHosts",
  );
  assert.equal(
    manifestDir("chrome", "darwin", env),
    "/home/ann/Library/Application Support/Google/Chrome/NativeMessagingHosts",
  );
});

Deno.test("the manifest allows exactly the extension's origin", () => {
  assert.deepEqual(buildManifest("/x/host.sh", ["abc"]), {
    name: HOST_NAME,
    description: "TabAgent local AI server",
    path: "/x/host.sh",
    type: "stdio",
    allowed_origins: ["chrome-extension://abc/"],
  });
});

Deno.test("the launcher quotes its command and runs native mode", () => {
  assert.match(
    launcherScript(["/opt/my deno/deno", "run", "it's.ts"], ["--data-dir", "/d"], "linux"),
    /exec '\/opt\/my deno\/deno' 'run' 'it'\\''s.ts' "\$@" '--data-dir' '\/d'/,
  );
});

Deno.test("install-host writes and removes manifests for each browser", async () => {
  const home = await Deno.makeTempDir();
  const env = { HOME: home };
  const common = {
    launcherPath: `${home}/data/native-host.sh`,
    command: ["/bin/tabagent"],
    flags: ["--data-dir", "/d"],
    extensionIds: ["abc"],
    env,
  };
  const installed = await installHost({
    browsers: ["chrome", "brave"],
    uninstall: false,
    ...common,
    platform: "linux",
  });
  assert.deepEqual(installed.map((r) => r.action), ["installed", "installed"]);
  const manifest = JSON.parse(await Deno.readTextFile(installed[0].manifestPath));
  assert.equal(manifest.path, common.launcherPath);
  assert.equal((await Deno.stat(common.launcherPath)).mode! & 0o111, 0o111);
  const removed = await installHost({
    browsers: ["chrome", "brave", "edge"],
    uninstall: true,
    ...common,
    platform: "linux",
  });
  assert.deepEqual(removed.map((r) => r.action), ["removed", "removed", "absent"]);
  await assert.rejects(Deno.stat(installed[0].manifestPath), Deno.errors.NotFound);
  await Deno.remove(home, { recursive: true });
});
