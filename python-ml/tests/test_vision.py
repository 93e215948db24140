"""MediaPipe through the service, and LiteRT on the same image against MediaPipe's own runner."""

import grpc
import numpy as np
import pytest

from conftest import AUTH, error_code, pb

FACES, POSE, HANDS = 1, 2, 3


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    import cv2
    from skimage import data

    ok, png = cv2.imencode(".png", data.astronaut()[:, :, ::-1])
    assert ok
    return png.tobytes()


def test_astronaut_has_exactly_one_face_around_her_face(vision, astronaut_png):
    reply = vision.Detect(pb.DetectRequest(image=astronaut_png, tasks=[FACES]), metadata=AUTH)
    assert (reply.width, reply.height) == (512, 512)
    assert len(reply.detections) == 1
    face = reply.detections[0]
    assert face.score > 0.8
    # Her face: about x 0.35, y 0.16, 0.19 wide and high (measured with MediaPipe directly).
    assert abs(face.box.x - 0.35) < 0.03 and abs(face.box.y - 0.16) < 0.03
    assert abs(face.box.width - 0.19) < 0.03 and abs(face.box.height - 0.19) < 0.03
    assert len(face.landmarks) == 6  # eyes, nose, mouth, ears
    assert reply.inference_ms > 0


def test_pose_puts_the_nose_inside_the_face(vision, astronaut_png):
    reply = vision.Detect(pb.DetectRequest(image=astronaut_png, tasks=[FACES, POSE]), metadata=AUTH)
    face = next(d for d in reply.detections if d.task == FACES)
    pose = next(d for d in reply.detections if d.task == POSE)
    assert len(pose.landmarks) == 33
    nose = pose.landmarks[0]
    assert face.box.x < nose.x < face.box.x + face.box.width
    assert face.box.y < nose.y < face.box.y + face.box.height


def test_raw_rgb_gives_the_same_face(vision):
    from skimage import data

    rgb = data.astronaut()
    reply = vision.Detect(pb.DetectRequest(image=rgb.tobytes(), width=512, height=512, tasks=[FACES]), metadata=AUTH)
    assert len(reply.detections) == 1


def test_hands_on_an_image_without_hands(vision):
    from skimage import data
    import cv2

    ok, png = cv2.imencode(".png", data.coffee()[:, :, ::-1])
    reply = vision.Detect(pb.DetectRequest(image=png.tobytes(), tasks=[HANDS]), metadata=AUTH)
    assert list(reply.detections) == []


def test_not_an_image_is_unsupported_media_type(vision):
    with pytest.raises(grpc.RpcError) as caught:
        vision.Detect(pb.DetectRequest(image=b"definitely not an image", tasks=[FACES]), metadata=AUTH)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(caught.value) == "unsupported_media_type"


def test_frame_stream_answers_every_frame_in_order(vision, astronaut_png):
    frames = [pb.Frame(id=i, image=astronaut_png, tasks=[FACES]) for i in range(1, 4)]
    replies = list(vision.DetectStream(iter(frames), metadata=AUTH))
    assert [r.frame_id for r in replies] == [1, 2, 3]
    assert all(len(r.detections) == 1 for r in replies)


def test_litert_on_the_face_model_matches_mediapipe(vision, litert, astronaut_png):
    from skimage import data

    from tabagent_ml.litert import decode_faces, face_input

    mediapipe = vision.Detect(pb.DetectRequest(image=astronaut_png, tasks=[FACES]), metadata=AUTH).detections
    tensor, letterbox = face_input(data.astronaut())
    reply = litert.Run(pb.RunRequest(model="mediapipe/face_detection_short_range", inputs=[
        pb.Tensor(dtype=1, shape=list(tensor.shape), data=tensor.astype("<f4").tobytes())]), metadata=AUTH)
    outputs = {tuple(t.shape): np.frombuffer(t.data, "<f4").reshape(t.shape) for t in reply.outputs}
    faces = decode_faces(outputs[(1, 896, 16)], outputs[(1, 896, 1)], letterbox)
    assert len(faces) == len(mediapipe) == 1
    score, (x, y, w, h) = faces[0]
    want = mediapipe[0]
    assert abs(score - want.score) < 0.02
    for got, expected in ((x, want.box.x), (y, want.box.y), (w, want.box.width), (h, want.box.height)):
        assert abs(got - expected) < 0.01


def test_litert_refuses_a_wrong_shape(litert):
    with pytest.raises(grpc.RpcError) as caught:
        litert.Run(pb.RunRequest(model="mediapipe/face_detection_short_range", inputs=[
            pb.Tensor(dtype=1, shape=[1, 2], data=b"\0" * 8)]), metadata=AUTH)
    assert error_code(caught.value) == "validation_failed"
