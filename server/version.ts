/** The server's version, reported by `--version`, `/v1/health` and the OpenAPI document. */
export const VERSION = "0.1.0";
