"""Image chat (issue 15): a photo uploaded as the mini-program uploads it (POST /api/v1/uploads,
multipart as wx.uploadFile sends it), then named in a chat message's ``images``, reaches each
platform's fake as that platform takes images (tests/fakes/image_parts.py): downscaled, upright
and without its EXIF. One served app for the module, an agent per platform."""

import base64
import functools
import io
import json
import uuid

import pytest
import yaml
from PIL import Image

import wellmate
from conftest import Served, assert_error, merge, shipped_config
from fakes.coze_server import FakeCoze
from fakes.dify_server import FakeDify
from fakes.fastgpt_server import FakeFastGPT
from fakes.openai_server import FakeOpenAI
from test_chat import stream
from test_uploads import BOUNDARY, REFERER, SERIAL, encoded, halves, phone_photo, wx_upload_body

QUESTION = "这张化验单怎么看"
SEEN = "化验单上的白细胞偏高，建议复查。"
PHOTO_SIDE = 1600  # uploads.max_side's default: the longest side upstream


def photo(width=800, height=600) -> bytes:
    """A small upright JPEG, stored as it is (no side over uploads.max_side)."""
    return encoded(halves((width, height), (220, 20, 20), (20, 20, 220)), "JPEG", quality=90)


phone = functools.cache(phone_photo)  # 3000 x 2000 with GPS, serial, XMP: made once for the module


def wx_upload(client, token, data: bytes) -> dict:
    """POST /api/v1/uploads as the mini-program's wx.uploadFile sends it (tests/test_uploads.py)."""
    r = client.request("POST", "/api/v1/uploads", raw=wx_upload_body(data, form={"user": "test"}), token=token,
                       headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Referer": REFERER})
    assert r.status == 201, r.text
    return r.json


@pytest.fixture(scope="module")
def fakes():
    with FakeOpenAI(reply=SEEN) as openai, FakeCoze(reply=SEEN) as coze, FakeDify(reply=SEEN) as dify, \
            FakeFastGPT(reply=SEEN) as fastgpt:
        yield {"openai": openai, "coze": coze, "dify": dify, "fastgpt": fastgpt}


@pytest.fixture(scope="module")
def served(tmp_path_factory, fakes):
    tmp = tmp_path_factory.mktemp("vision")
    f = fakes
    eye = {"vision": True, "timeout": 5}
    agent = {"prompt": "prompts/physical.txt", "providers": ["offline"]}
    config = merge(shipped_config(tmp), {
        "providers": {
            "eye_openai": {"plugin": "openai", "base_url": f["openai"].url, "model": "qwen2.5vl:3b", **eye},
            "eye_coze": {"plugin": "coze", "base_url": f["coze"].url, "bot_id": f["coze"].bot_id,
                         "api_key": f["coze"].api_key, **eye},
            "eye_dify": {"plugin": "dify", "base_url": f["dify"].url, "api_key": f["dify"].api_key, **eye},
            "eye_fastgpt": {"plugin": "fastgpt", "base_url": f["fastgpt"].url, "api_key": f["fastgpt"].api_key, **eye},
            # A Dify that refuses the key, and an Ollama that is switched off: vision providers that fail.
            "bad_dify": {"plugin": "dify", "base_url": f["dify"].url, "api_key": "app-wrong", **eye},
            "off": {"plugin": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "llava", **eye},
        },
        "agents": {
            "physical": {"vision_providers": ["eye_openai"]},  # mental keeps none: it cannot see
            "coze": {**agent, "vision_providers": ["eye_coze"]},
            "dify": {**agent, "vision_providers": ["eye_dify"]},
            "fastgpt": {**agent, "vision_providers": ["eye_fastgpt"]},
            "fallback": {**agent, "vision_providers": ["bad_dify", "eye_openai"]},
            "failing": {**agent, "vision_providers": ["off"]},
        },
        "chat": {"ping_seconds": 0.2, "max_images": 2},
        "safety": {"disclaimer": "never"},  # the upstream's words arrive unchanged
    })
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    wm = wellmate.create_app(path)
    server = Served(wm)
    yield server
    server.stop()
    wm.close()


def sign_in(client, username=None):
    answer = client.register(username=username or "u" + uuid.uuid4().hex[:10])
    return answer["access_token"], answer["user"]["uuid"]


def with_photo(served, data: bytes | None = None):
    """A new user with a photo uploaded: (client, token, the upload's id)."""
    client = served.client
    token, _ = sign_in(client)
    return client, token, wx_upload(client, token, data or photo())["id"]


def ask(client, token, agent, body, streamed):
    """A chat turn, plain or streamed: the reply as the JSON answer (a stream's done event)."""
    if not streamed:
        r = client.post(f"/api/v1/health/{agent}/chat", body, token=token)
        assert r.status == 200, r.text
        return r.json
    events = stream(client, agent, body, token)
    assert events[-1][0] == "done", events
    assert "".join(data["delta"] for kind, data in events if kind == "message") == events[-1][1]["content"]
    return events[-1][1]


def messages(client, token, session_id):
    return client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]


def sessions(client, token):
    return client.get("/api/v1/health/sessions", token=token).json["items"]


def assert_as_stored(received: bytes, client, token, upload_id):
    """What the platform received is the stored photo: downscaled, upright, with no EXIF at all."""
    assert received == client.get(f"/api/v1/uploads/{upload_id}", token=token).body
    image = Image.open(io.BytesIO(received))
    assert image.format == "JPEG" and image.height == PHOTO_SIDE and image.width < image.height  # turned upright
    assert not image.getexif() and "exif" not in image.info and "xmp" not in image.info
    assert SERIAL.encode() not in received and b"P40 Pro" not in received


def received_images(platform, fake):
    """(the question's text, the images' bytes) as the platform's fake got them last."""
    if platform == "openai":
        parts = fake.last.body["messages"][-1]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url"]
        assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")  # the only kind Ollama takes
        return parts[0]["text"], fake.last.images
    if platform == "coze":
        question = fake.last.body["additional_messages"][-1]
        assert question["content_type"] == "object_string" and question["type"] == "question"
        objects = json.loads(question["content"])
        assert [o["type"] for o in objects] == ["text", "image"] and objects[1]["file_id"] in fake.files
        return objects[0]["text"], fake.last.images
    if platform == "dify":
        (file,) = fake.last.body["files"]
        assert file["type"] == "image" and file["transfer_method"] == "local_file"
        assert fake.files[file["upload_file_id"]]["user"] == fake.last.body["user"]  # uploaded as that user
        return fake.last.body["query"], fake.last.images
    return fake.last.question, fake.last.images  # fastgpt: image_url parts, passed through


# -- a photo reaches each platform -------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("agent,platform", [("physical", "openai"), ("coze", "coze"), ("dify", "dify"),
                                            ("fastgpt", "fastgpt")])
def test_a_lab_report_photo_reaches_the_platform_downscaled_without_exif(served, fakes, agent, platform, streamed):
    client, token, upload_id = with_photo(served, phone())
    reply = ask(client, token, agent, {"text": QUESTION, "images": [upload_id]}, streamed)
    assert reply["content"] == SEEN and reply["provider"] == f"eye_{platform}"
    text, images = received_images(platform, fakes[platform])
    assert text == QUESTION and len(images) == 1
    assert_as_stored(images[0], client, token, upload_id)
    # The stored message keeps the image's id, and the session shows it.
    user_message, answer = messages(client, token, reply["session_id"])
    assert user_message["content"] == QUESTION and user_message["images"] == [upload_id]
    assert user_message["emotion"] and answer["content"] == SEEN and "images" not in answer


def test_text_turns_keep_the_text_chain_and_a_later_turn_sends_only_its_own_images(served, fakes):
    client, openai = served.client, fakes["openai"]
    token, _ = sign_in(client)
    first, second = wx_upload(client, token, phone()), wx_upload(client, token, photo(1200, 900))
    asked = len(openai.requests)
    plain = ask(client, token, "physical", {"text": "我最近睡不好"}, False)
    assert plain["provider"] == "offline" and len(openai.requests) == asked  # no image: the text chain
    session = plain["session_id"]
    ask(client, token, "physical", {"text": QUESTION, "images": [first["id"]], "session_id": session}, False)
    ask(client, token, "physical", {"text": "那这张呢？", "images": [second["id"]], "session_id": session}, True)
    assert len(openai.last.images) == 1 and Image.open(io.BytesIO(openai.last.images[0])).size == (1200, 900)
    history = openai.last.body["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert history[3]["content"] == QUESTION  # an earlier image turn goes as its text


def test_images_without_text_and_several_images(served, fakes):
    client, openai = served.client, fakes["openai"]
    token, _ = sign_in(client)
    ids = [wx_upload(client, token, photo())["id"] for _ in range(2)]
    reply = ask(client, token, "physical", {"images": ids}, False)
    assert reply["content"] == SEEN
    parts = openai.last.body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"] and parts[0]["text"] == "请看看这张照片。"
    assert [base64.b64decode(p["image_url"]["url"].split(",", 1)[1]) for p in parts[1:]] == openai.last.images
    (user_message, _) = messages(client, token, reply["session_id"])
    assert user_message["content"] == "" and user_message["images"] == ids
    # The same id twice is one image.
    ask(client, token, "physical", {"text": "再看一下", "images": [ids[0], ids[0]]}, False)
    assert len(openai.last.images) == 1


def test_a_failing_vision_provider_hands_the_photo_to_the_next(served, fakes):
    (client, token, upload_id), dify = with_photo(served), fakes["dify"]
    dify_files = len(dify.files)
    for streamed in (False, True):
        reply = ask(client, token, "fallback", {"text": QUESTION, "images": [upload_id]}, streamed)
        assert reply["provider"] == "eye_openai" and reply["content"] == SEEN
    assert len(dify.files) == dify_files  # Dify refused the upload (401): nothing kept there


def test_a_dify_app_without_image_upload_gets_the_sentence_not_a_503(served, fakes):
    (client, token, upload_id), dify = with_photo(served), fakes["dify"]
    dify.vision = False  # the app's image upload switched off: Dify refuses the files (400 invalid_param)
    try:
        for streamed in (False, True):
            reply = ask(client, token, "dify", {"text": QUESTION, "images": [upload_id]}, streamed)
            assert reply["provider"] == "wellmate" and "还不能看照片" in reply["content"]
    finally:
        dify.vision = True


# -- no vision provider -----------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
def test_without_a_vision_provider_the_reply_says_so_plainly_and_the_photo_stays(served, streamed):
    client, token, upload_id = with_photo(served)
    # mental has no vision_providers (only the offline companion); failing's only one is switched off.
    for agent, text, words in (("mental", QUESTION, "还不能看照片"), ("mental", "What does this rash mean?",
                                                                  "cannot look at photos yet"),
                               ("failing", QUESTION, "还不能看照片"), ("mental", None, "还不能看照片")):
        body = {"images": [upload_id], **({"text": text} if text else {})}
        reply = ask(client, token, agent, body, streamed)
        assert words in reply["content"] and reply["provider"] == "wellmate" and not reply["sources"]
        user_message, stored = messages(client, token, reply["session_id"])
        assert user_message["images"] == [upload_id] and stored["content"] == reply["content"]
    assert client.get(f"/api/v1/uploads/{upload_id}", token=token).status == 200


def test_a_crisis_with_a_photo_gets_the_crisis_reply_and_no_model(served, fakes):
    (client, token, upload_id), openai = with_photo(served), fakes["openai"]
    asked = len(openai.requests)
    for streamed in (False, True):
        reply = ask(client, token, "physical", {"text": "我真的不想活了", "images": [upload_id]}, streamed)
        assert reply["provider"] == "safety" and "12356" in reply["content"] and reply["emotion"] == "concerned"
        assert served.wm.service("safety").book.flags_of(reply["session_id"]) == {"crisis": 1}
        user_message, _ = messages(client, token, reply["session_id"])
        assert user_message["images"] == [upload_id] and user_message["emotion"]
    assert len(openai.requests) == asked


# -- limits and other users' photos -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["chat", "chat/stream"])
def test_bad_image_lists_are_refused_before_anything_is_stored(served, path):
    client = served.client
    token, _ = sign_in(client)
    theirs, _ = sign_in(client)
    ids = [wx_upload(client, token, photo(640, 480))["id"] for _ in range(3)]
    other = wx_upload(client, theirs, photo(640, 480))["id"]

    def post(body):
        return client.post(f"/api/v1/health/physical/{path}", body, token=token)
    assert_error(post({"text": QUESTION, "images": ids}), 400, "too_many_images")  # chat.max_images: 2
    assert_error(post({"text": QUESTION, "images": ids[0]}), 400, "invalid_field")  # not a list
    assert_error(post({"text": QUESTION, "images": [ids[0], 7]}), 400, "invalid_field")
    assert_error(post({"text": QUESTION, "images": ["x" * 65]}), 400, "invalid_field")
    assert_error(post({"images": []}), 400, "missing_field")  # neither text nor an image
    # Unknown, and another user's: the same 404, which reveals nothing about the other's photo.
    unknown, foreign = post({"text": QUESTION, "images": ["0" * 32]}), post({"text": QUESTION, "images": [ids[0], other]})
    assert_error(unknown, 404, "upload_not_found")
    assert_error(foreign, 404, "upload_not_found")
    assert sessions(client, token) == []  # nothing stored
    assert client.get(f"/api/v1/uploads/{other}", token=theirs).status == 200


# -- deleting ---------------------------------------------------------------------------------------


def test_deleting_a_session_deletes_the_photos_only_it_shows(served):
    client = served.client
    token, _ = sign_in(client)
    shared, own = (wx_upload(client, token, photo(640, 480))["id"] for _ in range(2))
    first = ask(client, token, "mental", {"text": "看看", "images": [shared, own]}, False)["session_id"]
    second = ask(client, token, "mental", {"text": "再看看", "images": [shared]}, True)["session_id"]
    assert client.delete(f"/api/v1/health/sessions/{first}", token=token).status == 204
    assert client.get(f"/api/v1/uploads/{own}", token=token).status == 404  # only the deleted session showed it
    assert client.get(f"/api/v1/uploads/{shared}", token=token).status == 200  # the other session still shows it
    assert client.delete(f"/api/v1/health/sessions/{second}", token=token).status == 204
    assert client.get(f"/api/v1/uploads/{shared}", token=token).status == 404
    assert served.wm.storage.find("chat_images", {"session_id": second})[0] == []


def test_a_vision_provider_must_say_it_can_see(make_wm):
    def refused(agent: dict, message: str):
        with pytest.raises(wellmate.ConfigError, match=message):
            make_wm({"providers": {"local": {"plugin": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
                     "agents": {"mental": agent}})
    refused({"vision_providers": ["offline"]},
            r"agents.mental.vision_providers: providers.offline cannot see images; plugin offline sends no images")
    refused({"vision_providers": ["local"]}, r"providers.local cannot see images; set vision: true under it")
    refused({"vision_providers": ["eyes"]}, r"agents.mental.vision_providers: 'eyes' is not defined")
