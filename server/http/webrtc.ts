/**
 * `/v1/webrtc/sessions`: WebRTC signaling for tab video. The client posts an SDP offer and gets the
 * answer, trickles its ICE candidates, reads the server's candidates as server-sent events, and
 * deletes the session when done.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { WEBRTC_MAX_CANDIDATES_PER_POST, WEBRTC_MAX_SDP_BYTES } from "../config/mod.ts";
import type { CandidateInit, WebRtcSessions } from "../webrtc/mod.ts";
import { SSE_HEADERS, sseEventSchema } from "./_sse.ts";
import { problem } from "./problem.ts";
import { BEARER_SECURITY, createRouter, streamedResponse } from "./router.ts";

const TAG = "webrtc";
/** `POST /v1/webrtc/sessions` body. */
export const OfferSchema = z.object({
  type: z.literal("offer"),
  sdp: z.string().min(1).max(WEBRTC_MAX_SDP_BYTES).describe(
    "The client's SDP offer; it must carry a data channel (m=application). Candidates may be in it or trickled",
  ),
}).openapi("WebRtcOffer");

const CandidateSchema = z.object({
  candidate: z.string().max(1024).describe("An `a=candidate` value without the `a=`; empty ends the client's list"),
  sdpMid: z.string().max(64).nullish(),
  sdpMLineIndex: z.number().int().min(0).max(64).nullish(),
  usernameFragment: z.string().max(256).nullish(),
});

/** `POST /v1/webrtc/sessions/{id}/candidates` body. */
export const CandidatesSchema = z.object({
  candidates: z.array(CandidateSchema).min(1).max(WEBRTC_MAX_CANDIDATES_PER_POST),
}).openapi("WebRtcCandidates");

const FramesSchema = z.object({
  received: z.number().int(),
  detected: z.number().int(),
  lost: z.number().int(),
  late: z.number().int(),
  malformed: z.number().int(),
  oversized: z.number().int(),
  superseded: z.number().int(),
  failed: z.number().int(),
});

const SessionSchema = z.object({
  id: z.string(),
  state: z.enum(["connecting", "connected", "closed"]),
  connection_state: z.string(),
  ice_state: z.string(),
  created_at: z.string(),
  idle_ms: z.number(),
  setup_ms: z.number().nullable(),
  frames: FramesSchema,
  results_dropped: z.number().int(),
  mdns_candidates_ignored: z.number().int(),
  close_reason: z.string().nullable(),
}).openapi("WebRtcSession");

const AnswerSchema = z.object({
  id: z.string(),
  type: z.literal("answer"),
  sdp: z.string().describe("The server's answer, with every server candidate already in it"),
  candidates_url: z.string(),
}).openapi("WebRtcAnswer");

const IdParam = z.object({ id: z.string().min(1).max(100) });

const createSession = createRoute({
  method: "post",
  path: "/v1/webrtc/sessions",
  tags: [TAG],
  summary: "Open a session: SDP offer in, SDP answer out",
  description: "The client creates two data channels: `frames` (unordered, maxRetransmits 0) carrying the " +
    "chunked frame protocol, and `results` (reliable) on which detections come back as JSON.",
  security: BEARER_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: OfferSchema } } } },
  responses: {
    201: { description: "Session created", content: { "application/json": { schema: AnswerSchema } } },
    400: problem("Malformed SDP"),
    429: problem("Too many sessions"),
    503: problem("Shutting down"),
  },
});

const listSessions = createRoute({
  method: "get",
  path: "/v1/webrtc/sessions",
  tags: [TAG],
  summary: "Open sessions",
  security: BEARER_SECURITY,
  responses: {
    200: {
      description: "Every open session",
      content: { "application/json": { schema: z.object({ data: z.array(SessionSchema) }) } },
    },
  },
});

const getSession = createRoute({
  method: "get",
  path: "/v1/webrtc/sessions/{id}",
  tags: [TAG],
  summary: "A session's state and frame counters",
  security: BEARER_SECURITY,
  request: { params: IdParam },
  responses: {
    200: { description: "The session", content: { "application/json": { schema: SessionSchema } } },
    404: problem("Unknown session"),
  },
});

const deleteSession = createRoute({
  method: "delete",
  path: "/v1/webrtc/sessions/{id}",
  tags: [TAG],
  summary: "Close a session",
  security: BEARER_SECURITY,
  request: { params: IdParam },
  responses: { 204: { description: "Closed" }, 404: problem("Unknown session") },
});

const postCandidates = createRoute({
  method: "post",
  path: "/v1/webrtc/sessions/{id}/candidates",
  tags: [TAG],
  summary: "Trickle the client's ICE candidates",
  description: "mDNS (`.local`) candidates are accepted and skipped: the server learns the client's address " +
    "from its connectivity checks (peer-reflexive) instead.",
  security: BEARER_SECURITY,
  request: {
    params: IdParam,
    body: { required: true, content: { "application/json": { schema: CandidatesSchema } } },
  },
  responses: {
    204: { description: "Added" },
    400: problem("Malformed candidate"),
    404: problem("Unknown session"),
  },
});

const watchCandidates = createRoute({
  method: "get",
  path: "/v1/webrtc/sessions/{id}/candidates",
  tags: [TAG],
  summary: "The server's ICE candidates as server-sent events",
  description: "`event: candidate` with an `RTCIceCandidateInit` as data for each, then `event: end` once " +
    "gathering is complete; the stream then ends. Candidates gathered earlier are sent first.",
  security: BEARER_SECURITY,
  request: { params: IdParam },
  responses: {
    200: {
      description: "Event stream",
      content: { "text/event-stream": { schema: sseEventSchema({ events: ["candidate", "end"] }) } },
    },
    404: problem("Unknown session"),
  },
});

function candidateStream(watch: (listener: (candidate: CandidateInit | null) => void) => () => void): Response {
  const encoder = new TextEncoder();
  let unsubscribe = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      unsubscribe = watch((candidate) => {
        if (!open) return;
        if (candidate) {
          controller.enqueue(encoder.encode(`event: candidate\ndata: ${JSON.stringify(candidate)}\n\n`));
          return;
        }
        open = false;
        controller.enqueue(encoder.encode("event: end\ndata: {}\n\n"));
        controller.close();
        queueMicrotask(() => unsubscribe());
      });
    },
    cancel() {
      unsubscribe();
    },
  });
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}

/** The WebRTC signaling resource. */
export function webrtcRoutes(deps: { sessions: WebRtcSessions }) {
  const { sessions } = deps;
  return createRouter()
    .openapi(createSession, async (c) => {
      const { sdp } = c.req.valid("json");
      const { session, sdp: answer } = await sessions.create(sdp);
      return c.json({
        id: session.id,
        type: "answer" as const,
        sdp: answer,
        candidates_url: `/v1/webrtc/sessions/${session.id}/candidates`,
      }, 201);
    })
    .openapi(listSessions, (c) => c.json({ data: sessions.list() }, 200))
    .openapi(getSession, (c) => c.json(sessions.get(c.req.valid("param").id).info(), 200))
    .openapi(deleteSession, async (c) => {
      await sessions.delete(c.req.valid("param").id);
      return c.body(null, 204);
    })
    .openapi(postCandidates, async (c) => {
      const session = sessions.get(c.req.valid("param").id);
      await session.addCandidates(c.req.valid("json").candidates);
      return c.body(null, 204);
    })
    .openapi(watchCandidates, (c) => {
      const session = sessions.get(c.req.valid("param").id);
      return streamedResponse(candidateStream((listener) => session.watchCandidates(listener)));
    });
}
