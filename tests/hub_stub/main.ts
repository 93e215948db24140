/**
 * The Hub stub as its own process, so a benchmark's server does not share a thread with the client
 * it measures. Argument: JSON `{"repos":[{"id":"org/name","files":[{"path":"f.bin","diskPath":"/tmp/f","lfs":true}]}]}`.
 * Prints one JSON line `{"hubUrl","cdnUrl"}` once listening; faults are set with
 * `POST <hubUrl>/_stub/faults`, counters read from `GET <hubUrl>/_stub/stats`.
 * @module
 */
import { startHubStub, type StubRepo } from "./mod.ts";

interface FileArg {
  path: string;
  diskPath: string;
  lfs?: boolean;
}
const config = JSON.parse(Deno.args[0]) as { repos: { id: string; files: FileArg[] }[] };
const repos: StubRepo[] = [];
for (const repo of config.repos) {
  const files = [];
  for (const file of repo.files) {
    const { size } = await Deno.stat(file.diskPath);
    files.push({ path: file.path, lfs: file.lfs ?? true, content: { diskPath: file.diskPath, size } });
  }
  repos.push({ id: repo.id, files });
}
const stub = await startHubStub({ repos, control: true });
console.log(JSON.stringify({ hubUrl: stub.hubUrl, cdnUrl: stub.cdnUrl }));
Deno.addSignalListener("SIGTERM", async () => {
  await stub.close();
  Deno.exit(0);
});
