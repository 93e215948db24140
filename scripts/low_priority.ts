/** Native builds share the machine with everything else: their commands run at the lowest priority. */

/** Runs a command at the lowest priority; throws with the end of its stderr on failure. */
export async function runAtLowestPriority(command: string, args: string[], cwd?: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("nice", {
    args: ["-n", "19", command, ...args],
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${new TextDecoder().decode(stderr).slice(-4000)}`);
  }
}
