/**
 * Newline-delimited JSON streams, as Ollama streams every answer: one object a line, the last with
 * `done: true` (or `status: "success"`), an `{"error": "..."}` line when something fails mid-way.
 */
import { pacedResponse } from "../_paced_stream.ts";

const SHUTDOWN_MESSAGE = "the server is stopping; this reply was cut short";

/** Ollama's streaming media type. */
export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

/** Writes lines; a closed stream ignores writes (the client went away). */
export interface NdjsonWriter {
  send(data: unknown): void;
  /** Sends an already-serialised JSON object. */
  sendJson(json: string): void;
  /**
   * Sends a piece of a reply's text in the line `json` makes of it. Consecutive pieces sent with the
   * same `json` function that wait for the same write leave as one line holding their joined text.
   */
  sendText(text: string, json: (text: string) => string): void;
}

/**
 * A streaming response whose lines `produce` writes. `produce` gets a signal that aborts when the
 * client disconnects or any of `signals` aborts; generation must stop on it. An error thrown by
 * `produce` becomes a last `{"error": ...}` line, which Ollama's clients raise as an error.
 *
 * With `headLines`, the response (its head, then those lines in one write) goes out once `produce`
 * has written that many lines, or has ended, or after HEAD_HOLD_MAX_MS, as the SSE streams' head
 * does ({@link pacedResponse}): a reply's head then does not wake the client while the prompt is evaluated.
 *
 * Writes are batched the way the SSE streams are (see `_paced_stream.ts`): lines wait while the
 * socket is busy and leave together, a reply's text pieces joined into one line, and writes after
 * the first two are spaced a little apart.
 */
export async function ndjsonResponse(
  signals: AbortSignal[],
  produce: (writer: NdjsonWriter, signal: AbortSignal) => Promise<void>,
  options: { headLines?: number } = {},
): Promise<Response> {
  const line = (json: string) => `${json}\n`;
  return await pacedResponse(signals, ({ push, pushPiece, finish, signal, clientGone }) => {
    const writer: NdjsonWriter = {
      send: (data) => push(line(JSON.stringify(data))),
      sendJson: (json) => push(line(json)),
      sendText: pushPiece,
    };
    // Stopped by the server (not the client): the client still listens and must hear why the
    // stream ends without `done`, whether produce returned or threw on the abort.
    const stopped = () => signal.aborted && !clientGone.aborted;
    produce(writer, signal).then(() => {
      if (stopped()) writer.send({ error: SHUTDOWN_MESSAGE });
    }, (error) => {
      writer.send({ error: stopped() ? SHUTDOWN_MESSAGE : error instanceof Error ? error.message : String(error) });
    }).finally(finish);
  }, {
    headFrames: options.headLines,
    pieceFrame: line,
    headers: { "content-type": NDJSON_CONTENT_TYPE, "cache-control": "no-cache", "x-accel-buffering": "no" },
  });
}
