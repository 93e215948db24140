import assert from "node:assert/strict";
import {
  ABSOLUTE_PATH_PATTERN,
  isAbsolutePath,
  pathExists,
  pathExistsSync,
  removeIfPresent,
  statIfExists,
} from "./mod.ts";

Deno.test("pathExists and statIfExists tell a missing path from a present one, and lstat sees dangling links", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/a.txt`;
    assert.equal(await pathExists(file), false);
    assert.equal(pathExistsSync(file), false);
    assert.equal(await statIfExists(file), null);
    await Deno.writeTextFile(file, "hello");
    assert.equal(await pathExists(file), true);
    assert.equal(pathExistsSync(file), true);
    assert.equal((await statIfExists(file))?.size, 5);
    await Deno.symlink(`${dir}/missing`, `${dir}/dangling`);
    assert.equal(await pathExists(`${dir}/dangling`), false);
    assert.equal(await pathExists(`${dir}/dangling`, { followLinks: false }), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeIfPresent removes files and folders, accepts a missing path, and still reports other errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/sub/deeper`, { recursive: true });
    await Deno.writeTextFile(`${dir}/sub/deeper/x`, "x");
    await removeIfPresent(`${dir}/nothing-here`);
    await assert.rejects(removeIfPresent(`${dir}/sub`), (error) => !(error instanceof Deno.errors.NotFound));
    await removeIfPresent(`${dir}/sub`, { recursive: true });
    assert.equal(await pathExists(`${dir}/sub`), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("absolute paths are those of this OS: a drive letter is a relative name on POSIX", () => {
  const posix = Deno.build.os !== "windows";
  assert.equal(isAbsolutePath("/var/backups"), posix);
  assert.equal(isAbsolutePath("C:\\backups"), !posix);
  assert.equal(isAbsolutePath("C:/backups"), !posix);
  assert.equal(isAbsolutePath("\\\\host\\share"), !posix);
  assert.equal(isAbsolutePath("backups"), false);
  assert.equal(isAbsolutePath("./backups"), false);
  assert.equal(ABSOLUTE_PATH_PATTERN.test("A:\\x"), !posix);
});
