"""TabAgent's ML service: Transformers, MediaPipe and LiteRT behind gRPC.

The server (server/ml/) spawns `python -m tabagent_ml` and talks to it over protos/ml_inference.proto.
Heavy libraries (torch, transformers, mediapipe, LiteRT) are imported on first use of a model, never at
import time, so the service is SERVING within a fraction of a second.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
