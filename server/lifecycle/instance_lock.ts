import { TabAgentError } from "../errors/mod.ts";
import type { Component } from "./component.ts";

/**
 * One server per data dir: an exclusive advisory lock (flock) on `<dataDir>/server.lock`, held for
 * the server's life. Two servers on one data dir would both run the memory workers and fight over
 * the gRPC socket; the second is refused with the first one's pid instead. The kernel drops the
 * lock when its holder dies, so a `kill -9` never leaves the data dir locked.
 */
export class InstanceLock implements Component {
  readonly name = "instance-lock";
  readonly critical = true;
  #file?: Deno.FsFile;

  constructor(private readonly dataDir: string) {}

  async start(): Promise<void> {
    const path = `${this.dataDir}/server.lock`;
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    if (!(await file.tryLock(true))) {
      const holder = (await Deno.readTextFile(path).catch(() => "")).trim();
      file.close();
      throw new TabAgentError(
        "conflict",
        `Another TabAgent server${holder ? ` (pid ${holder})` : ""} is using ${this.dataDir}; ` +
          "stop it, or give this one another --data-dir",
        { path },
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    this.#file = file;
  }

  async stop(): Promise<void> {
    if (!this.#file) return;
    await this.#file.unlock();
    this.#file.close();
    this.#file = undefined;
  }
}
