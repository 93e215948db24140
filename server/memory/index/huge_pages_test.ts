import assert from "node:assert/strict";
import { anonymousMappings, collapseNewMemory, newHugePageStretches } from "./huge_pages.ts";

const MB = 1n << 20n;

Deno.test("new huge-page stretches: only 2 MB-aligned ones wholly inside memory that was not there before", () => {
  const before = [{ start: 0n, end: 8n * MB }];
  const after = [
    { start: 0n, end: 12n * MB }, // grew by 4 MB: two new stretches
    { start: 21n * MB, end: 26n * MB }, // unaligned: 22-24 and 24-26 fit
    { start: 30n * MB, end: 31n * MB }, // smaller than a huge page
  ];
  assert.deepEqual(newHugePageStretches(before, after), [8n * MB, 10n * MB, 22n * MB, 24n * MB]);
});

Deno.test("collapseNewMemory: memory in use goes on huge pages, memory never touched is left as it is", () => {
  const thp = Deno.build.os === "linux"
    ? Deno.readTextFileSync("/sys/kernel/mm/transparent_hugepage/enabled").match(/\[(\w+)\]/)?.[1]
    : undefined;
  const anonHuge = () => Number(Deno.readTextFileSync("/proc/self/smaps_rollup").match(/AnonHugePages:\s+(\d+)/)![1]);
  const before = anonymousMappings();
  // past glibc's largest mmap threshold (32 MB), so the buffer is a mapping of its own
  const buffer = new Uint8Array(64 * 1024 * 1024);
  if (!thp || thp === "never") {
    assert.ok(!collapseNewMemory(before));
    return;
  }
  const rss = () => Number(Deno.readTextFileSync("/proc/self/statm").split(" ")[1]);
  const untouched = rss();
  // never touched: collapsing would add memory, so nothing is collapsed
  assert.deepEqual(collapseNewMemory(before), 0);
  assert.ok(rss() - untouched < 1_000, "no memory added");
  buffer.fill(1);
  const huge = anonHuge();
  const collapsed = collapseNewMemory(before)!;
  assert.ok(collapsed >= 60 * 1024 * 1024, `collapsed ${collapsed} bytes`);
  assert.ok(anonHuge() - huge >= 60 * 1024, "the process's huge pages grew");
  assert.ok(buffer.every((byte) => byte === 1), "the data is unchanged");
});
