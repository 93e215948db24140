import { memoryClientSuite } from "./_client_suite.ts";
import { openLocalMemory } from "./local.ts";

memoryClientSuite("LocalMemory", (dir) => openLocalMemory({ dir }));
