"""Photos uploaded as the mini-program's wx.uploadFile sends them (plugins/uploads.py): judged by
their bytes, turned upright, stripped of EXIF/XMP/comments, downscaled, kept for their owner only,
counted against a quota, deleted with the upload or the account, exported. Real image bytes made
by Pillow, a real server, the multipart body written out by hand."""

import base64
import http.client
import io
import itertools
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from PIL import ExifTags, Image, PngImagePlugin

import wellmate
from conftest import Served, assert_error, merge, shipped_config

MB = 1024 * 1024
LIMITS = {"max_file_mb": 2, "quota_mb": 1, "max_pixels": 30_000_000}  # small, so the tests reach them
BOUNDARY = "----WxUploadFormBoundaryq8bW2fTzK3"
REFERER = "https://servicewechat.com/wx1234567890abcdef/0/page-frame.html"  # wx.uploadFile's, fixed
SERIAL = "SN-4417-SECRET"
names = (f"user{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One served Wellmate for the module (the shipped config with LIMITS)."""
    tmp = tmp_path_factory.mktemp("uploads")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(merge(shipped_config(tmp), {"uploads": LIMITS}), allow_unicode=True),
                    encoding="utf-8")
    wm = wellmate.create_app(path)
    served = Served(wm)
    yield served
    served.stop()
    wm.close()


def sign_up(site) -> tuple[str, str]:
    """(token, user id) of a new user."""
    answer = site.client.register(next(names))
    return answer["access_token"], answer["user"]["uuid"]


def wx_upload_body(data: bytes, filename="tmp_abc123.jpg", file_type="image/jpeg", form=None) -> bytes:
    """The body wx.uploadFile sends: each formData field a text part, then the file part."""
    body = b""
    for name, value in (form or {}).items():
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
             f"Content-Type: {file_type}\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body


def upload(site, token, data: bytes, **parts):
    return site.client.post("/api/v1/uploads", raw=wx_upload_body(data, **parts), token=token,
                            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Referer": REFERER})


def stored(site, token, upload_id, size="full") -> Image.Image:
    r = site.client.get(f"/api/v1/uploads/{upload_id}" + ("?size=thumb" if size == "thumb" else ""), token=token)
    assert r.status == 200, r.text
    image = Image.open(io.BytesIO(r.body))
    assert r.headers["Content-Type"] == Image.MIME[image.format]
    return image


def encoded(image: Image.Image, kind: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def halves(size, left, right, mode="RGB") -> Image.Image:
    image = Image.new(mode, size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def phone_photo() -> bytes:
    """A 3000 x 2000 JPEG as a phone stores a portrait photo: sideways (EXIF orientation 6), with
    its GPS position, make, model, serial number, an XMP packet and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "PhoneCo", "P40 Pro"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = SERIAL
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (31.0, 14.0, 2.5)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (121.0, 28.0, 11.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description exif:GPSLatitude="31,14.04N"/></x:xmpmeta>'
    return encoded(halves((3000, 2000), (220, 20, 20), (20, 20, 220)), "JPEG", quality=90, exif=exif, xmp=xmp,
                   comment=b"shot at home")


def png_bomb(width: int, height: int, depth: int = 1) -> bytes:
    """A real grey PNG of width x height black pixels of ``depth`` bits: a few KB that decode to
    width*height pixels (16-bit ones: two bytes each, and more on the way to 8-bit)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, packer = b"\0" * (1 + (width * depth + 7) // 8), zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def files_of(site, user_id) -> list[str]:
    folder = site.wm.data_dir / "uploads" / user_id
    return sorted(os.listdir(folder)) if folder.exists() else []


def listed(site, token) -> list[str]:
    r = site.client.get("/api/v1/uploads?limit=100", token=token)
    assert r.status == 200, r.text
    return [item["id"] for item in r.json["items"]]


# -- the wire ----------------------------------------------------------------------------------------


def test_the_body_wx_uploadFile_sends_is_a_201_with_the_stored_image(site):
    token, user_id = sign_up(site)
    photo = encoded(Image.new("RGB", (800, 600), (30, 160, 90)), "JPEG")
    r = upload(site, token, photo, form={"user": "test", "note": "化验单"})
    assert r.status == 201, r.text
    answer = r.json
    assert set(answer) == {"id", "content_type", "size", "width", "height", "created_at"}
    assert (answer["content_type"], answer["width"], answer["height"]) == ("image/jpeg", 800, 600)
    full = site.client.get(f"/api/v1/uploads/{answer['id']}", token=token)
    assert full.status == 200 and len(full.body) == answer["size"]
    assert full.headers["Cache-Control"] == "private, no-store"
    assert stored(site, token, answer["id"], "thumb").size == (320, 240)
    assert listed(site, token) == [answer["id"]]
    assert files_of(site, user_id) == sorted([f"{answer['id']}.jpg", f"{answer['id']}.thumb.jpg"])


def test_the_declared_type_and_name_do_not_count(site):
    token, _ = sign_up(site)
    png = encoded(Image.new("RGB", (100, 80), "white"), "PNG")
    r = upload(site, token, png, filename="wxfile://tmp_9f2.jpg", file_type="application/octet-stream")
    assert r.status == 201 and r.json["content_type"] == "image/jpeg", r.text  # a PNG without alpha: a JPEG
    text = "这是一张化验单，不是图片".encode() * 20
    assert_error(upload(site, token, text, filename="photo.jpg", file_type="image/jpeg"), 415, "unsupported_image")
    bmp = encoded(Image.new("RGB", (50, 50), "red"), "BMP")  # a real image, of a kind not taken
    assert_error(upload(site, token, bmp, file_type="image/jpeg"), 415, "unsupported_image")
    cut = encoded(Image.effect_noise((400, 400), 60).convert("RGB"), "JPEG")
    assert_error(upload(site, token, cut[:len(cut) // 2]), 415, "unsupported_image")
    assert len(listed(site, token)) == 1


def test_a_request_that_is_not_a_form_with_a_file_is_a_400(site):
    token, _ = sign_up(site)
    photo = encoded(Image.new("RGB", (40, 40)), "JPEG")
    r = site.client.post("/api/v1/uploads", raw=photo, token=token, headers={"Content-Type": "image/jpeg"})
    assert_error(r, 400, "invalid_multipart")
    no_file = wx_upload_body(photo).replace(b'name="file"', b'name="image"')
    r = site.client.post("/api/v1/uploads", raw=no_file, token=token,
                         headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert_error(r, 400, "invalid_multipart")
    cut_off = wx_upload_body(photo)[:-30]  # the closing boundary never came
    r = site.client.post("/api/v1/uploads", raw=cut_off, token=token,
                         headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert_error(r, 400, "invalid_multipart")
    assert_error(upload(site, None, photo), 401, "unauthorized")
    assert listed(site, token) == []


# -- what is stored -----------------------------------------------------------------------------------


def test_a_phone_photo_is_stored_upright_small_and_without_its_metadata(site):
    token, _ = sign_up(site)
    photo = phone_photo()
    sent = Image.open(io.BytesIO(photo))  # what the phone sent has all of it
    assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo) and SERIAL.encode() in photo and "xmp" in sent.info
    r = upload(site, token, photo)
    assert r.status == 201, r.text
    assert (r.json["width"], r.json["height"]) == (1067, 1600)  # upright (portrait) and downscaled
    raw = site.client.get(f"/api/v1/uploads/{r.json['id']}", token=token).body
    image = Image.open(io.BytesIO(raw))
    assert image.format == "JPEG" and image.size == (1067, 1600)
    assert len(image.getexif()) == 0 and not {"exif", "xmp", "comment"} & set(image.info)
    for secret in (SERIAL.encode(), b"PhoneCo", b"P40 Pro", b"GPSLatitude", b"shot at home", b"Exif\0\0"):
        assert secret not in raw
    # Orientation 6: the stored left half (red) is the top of the photo as it was taken.
    top, bottom = image.getpixel((530, 100)), image.getpixel((530, 1500))
    assert top[0] > 180 and top[2] < 60 and bottom[2] > 180 and bottom[0] < 60
    assert len(raw) < len(photo) / 2
    thumb = stored(site, token, r.json["id"], "thumb")
    assert max(thumb.size) == 320 and thumb.height > thumb.width and len(thumb.getexif()) == 0


def test_a_png_with_transparency_stays_a_png_and_loses_its_text(site):
    token, _ = sign_up(site)
    clear = halves((400, 300), (0, 0, 0, 0), (10, 120, 200, 255), mode="RGBA")
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Zhang Wei, 13800138000")
    r = upload(site, token, encoded(clear, "PNG", pnginfo=text), filename="tmp_shot.png", file_type="image/png")
    assert r.status == 201 and r.json["content_type"] == "image/png", r.text
    image = stored(site, token, r.json["id"])
    assert image.mode == "RGBA" and image.getpixel((10, 10))[3] == 0 and image.getpixel((390, 10)) == (10, 120, 200, 255)
    assert not image.text and b"13800138000" not in encoded(image, "PNG")
    assert stored(site, token, r.json["id"], "thumb").format == "PNG"
    # An alpha channel no pixel uses is no reason for a PNG.
    opaque = Image.new("RGBA", (200, 100), (90, 90, 90, 255))
    assert upload(site, token, encoded(opaque, "PNG")).json["content_type"] == "image/jpeg"


def test_webp_and_the_first_frame_of_a_gif(site):
    token, _ = sign_up(site)
    r = upload(site, token, encoded(Image.new("RGB", (2000, 1000), (200, 200, 0)), "WEBP"), file_type="image/webp")
    assert r.status == 201, r.text
    assert (r.json["content_type"], r.json["width"], r.json["height"]) == ("image/jpeg", 1600, 800)
    frames = [Image.new("RGB", (120, 90), colour) for colour in ((230, 0, 0), (0, 230, 0))]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    r = upload(site, token, gif, file_type="image/gif")
    assert r.status == 201 and r.json["content_type"] == "image/jpeg", r.text
    pixel = stored(site, token, r.json["id"]).getpixel((60, 45))
    assert pixel[0] > 200 and pixel[1] < 40  # red: the first frame


# -- limits -------------------------------------------------------------------------------------------


def test_a_decompression_bomb_is_a_413_before_it_is_decoded(site):
    token, user_id = sign_up(site)
    bomb = png_bomb(20000, 20000)  # 400 MP in a few KB: over twice max_pixels, Pillow's own guard
    assert len(bomb) < 100_000
    assert_error(upload(site, token, bomb, file_type="image/png"), 413, "image_too_large")
    just_over = png_bomb(6000, 6000)  # 36 MP: over max_pixels (30 MP), under Pillow's error
    assert_error(upload(site, token, just_over, file_type="image/png"), 413, "image_too_large")
    assert files_of(site, user_id) == [] and listed(site, token) == []
    assert upload(site, token, encoded(Image.new("RGB", (60, 60)), "PNG")).status == 201


def test_a_small_file_that_decodes_big_is_a_413_before_it_is_decoded(site):
    """Only pixels were counted: a 95 KB blank 16-bit 7000 x 7000 PNG (under max_pixels) was
    decoded and converted through 32-bit grey, and one upload raised the server's RSS by 470 MB."""
    token, user_id = sign_up(site)
    deep = png_bomb(5000, 5000, depth=16)  # 25 MP: under max_pixels (30 MP), ~275 MB to convert
    assert len(deep) < 100_000
    r = upload(site, token, deep, file_type="image/png")
    assert_error(r, 413, "image_too_large")
    assert "max_decode_mb" in r.json["error"]["message"]
    assert files_of(site, user_id) == [] and listed(site, token) == []
    assert upload(site, token, png_bomb(1000, 1000, depth=16), file_type="image/png").status == 201  # 11 MB: fine


def test_a_body_over_the_limit_is_a_413_and_stores_nothing(site):
    token, user_id = sign_up(site)
    huge = wx_upload_body(os.urandom(3 * MB))
    r = site.client.post("/api/v1/uploads", raw=huge, token=token,
                         headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert_error(r, 413, "file_too_large")
    # Just over max_file_mb, but with the form within the body's room: refused by the file's size.
    assert_error(upload(site, token, os.urandom(2 * MB + 1000)), 413, "file_too_large")
    # Chunked, with no Content-Length to check first: cut at the limit.
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    conn.request("POST", "/api/v1/uploads", body=iter([huge[i:i + MB] for i in range(0, len(huge), MB)]),
                 encode_chunked=True, headers={"Authorization": f"Bearer {token}", "Transfer-Encoding": "chunked",
                                               "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    response = conn.getresponse()
    assert response.status == 413 and b"file_too_large" in response.read()
    conn.close()
    assert files_of(site, user_id) == [] and listed(site, token) == []


def test_the_quota_counts_what_is_stored_and_nothing_is_half_written(site):
    token, user_id = sign_up(site)
    noise = encoded(Image.frombytes("RGB", (640, 480), os.urandom(640 * 480 * 3)), "JPEG", quality=95)
    kept = []
    for _ in range(10):
        r = upload(site, token, noise)
        if r.status != 201:
            break
        kept.append(r.json)
    assert_error(r, 413, "quota_exceeded")
    assert kept and sum(item["size"] for item in kept) <= LIMITS["quota_mb"] * MB
    assert len(files_of(site, user_id)) == 2 * len(kept) and len(listed(site, token)) == len(kept)
    other, _ = sign_up(site)  # a quota is per user
    assert upload(site, other, noise).status == 201
    assert site.client.delete(f"/api/v1/uploads/{kept[0]['id']}", token=token).status == 204
    assert upload(site, token, noise).status == 201


# -- owners, deletion, export -------------------------------------------------------------------------


def test_another_users_upload_is_a_404_everywhere(site):
    alice, alice_id = sign_up(site)
    bob, bob_id = sign_up(site)
    upload_id = upload(site, alice, encoded(Image.new("RGB", (64, 64)), "JPEG")).json["id"]
    for path in (f"/api/v1/uploads/{upload_id}", f"/api/v1/uploads/{upload_id}?size=thumb"):
        assert_error(site.client.get(path, token=bob), 404, "upload_not_found")
    assert_error(site.client.delete(f"/api/v1/uploads/{upload_id}", token=bob), 404, "upload_not_found")
    assert listed(site, bob) == [] and listed(site, alice) == [upload_id]
    uploads = site.wm.service("uploads")
    assert uploads.get(bob_id, upload_id) is None and uploads.read(bob_id, upload_id) is None
    assert uploads.content_type(bob_id, upload_id) is None and uploads.data_url(bob_id, upload_id) is None
    assert uploads.delete(bob_id, [upload_id]) == 0
    assert uploads.get(alice_id, upload_id)["id"] == upload_id
    assert uploads.data_url(alice_id, upload_id).startswith("data:image/jpeg;base64,/9j/")
    assert_error(site.client.get(f"/api/v1/uploads/{upload_id}?size=huge", token=alice), 400, "invalid_field")


def test_deleting_an_upload_removes_its_files(site):
    token, user_id = sign_up(site)
    first, second = (upload(site, token, encoded(Image.new("RGB", (50, 50), c), "JPEG")).json["id"]
                     for c in ("red", "blue"))
    assert site.client.delete(f"/api/v1/uploads/{first}", token=token).status == 204
    assert_error(site.client.get(f"/api/v1/uploads/{first}", token=token), 404, "upload_not_found")
    assert_error(site.client.delete(f"/api/v1/uploads/{first}", token=token), 404, "upload_not_found")
    assert files_of(site, user_id) == sorted([f"{second}.jpg", f"{second}.thumb.jpg"])
    assert site.wm.service("uploads").delete(user_id, [second, first, "nope"]) == 1  # image chat's call
    assert files_of(site, user_id) == [] and listed(site, token) == []


def test_the_list_is_paged_newest_first(site):
    token, _ = sign_up(site)
    ids = [upload(site, token, encoded(Image.new("RGB", (30, 30)), "JPEG")).json["id"] for _ in range(3)]
    first = site.client.get("/api/v1/uploads?limit=2", token=token).json
    second = site.client.get(f"/api/v1/uploads?limit=2&before={first['next']}", token=token).json
    assert [item["id"] for item in first["items"] + second["items"]] == ids[::-1] and second["next"] is None


def test_deleting_the_account_removes_the_files(site):
    token, user_id = sign_up(site)
    for colour in ("red", "green"):
        upload(site, token, encoded(Image.new("RGB", (50, 50), colour), "JPEG"))
    assert len(files_of(site, user_id)) == 4
    r = site.client.delete("/api/v1/users/me", {"password": "correct horse"}, token=token)
    assert r.status == 204, r.text
    assert not (site.wm.data_dir / "uploads" / user_id).exists()
    assert site.wm.storage.count("uploads", {"user_id": user_id}) == 0


def test_the_export_holds_the_stored_images(site):
    token, _ = sign_up(site)
    upload_id = upload(site, token, phone_photo()).json["id"]
    r = site.client.get("/api/v1/users/export", token=token)
    assert r.status == 200, r.text
    [item] = r.json["uploads"]
    assert item["id"] == upload_id and item["url"] == f"/api/v1/uploads/{upload_id}"
    assert base64.b64decode(item["data_base64"]) == site.client.get(item["url"], token=token).body


def test_files_a_killed_upload_or_delete_left_are_swept_at_startup(make_wm, serve):
    """A kill after the files were written and before the document (or after the document was
    deleted and before the files): files no document names, and temp files, go at the next start."""
    wm = make_wm()
    served = serve(wm)
    token = served.client.register("kim")["access_token"]
    kept = upload(served, token, encoded(Image.new("RGB", (40, 40), "red"), "JPEG")).json["id"]
    user_id = wm.storage.get("uploads", kept)["user_id"]
    folder = wm.data_dir / "uploads" / user_id
    leftovers = ["0123456789abcdef0123456789abcdef.jpg", "0123456789abcdef0123456789abcdef.thumb.jpg",
                 f".{kept}.thumb.jpg.4242.140.tmp"]
    for name in leftovers:
        (folder / name).write_bytes(b"\xff\xd8\xff half a jpeg")
    served.stop()
    wm.close()
    again = make_wm(start=True)
    assert sorted(os.listdir(folder)) == sorted([f"{kept}.jpg", f"{kept}.thumb.jpg"])
    assert again.service("uploads").read(user_id, kept)[:3] == b"\xff\xd8\xff"


def slow_photo() -> bytes:
    """~9 MP to decode, downscale and encode: each upload is in progress long enough for the next to meet it."""
    return encoded(Image.linear_gradient("L").resize((3000, 3000)).convert("RGB"), "PNG")


def sent_until_refused(together, status: int, code: str) -> int:
    """Call ``together()`` (the answers to uploads sent at once) until one is refused with
    ``status`` and ``code`` and a Retry-After; every other answer must be a 201. Sent together,
    they overlap at once; a frozen machine gets more tries. How many were stored meanwhile."""
    stored = 0
    for _ in range(10):
        answers = together()
        assert {r.status for r in answers} <= {201, status}, [r.text for r in answers]
        stored += sum(r.status == 201 for r in answers)
        refused = [r for r in answers if r.status == status]
        if refused:
            assert_error(refused[0], status, code)
            assert refused[0].headers["Retry-After"]
            return stored
    raise AssertionError("uploads sent together never met")


def test_one_users_uploads_past_the_cap_are_429s_at_once_and_another_users_go_on(make_wm, serve):
    """Each upload holds a server thread while it waits for a processing slot (up to 10 s): one
    user's uploads sent together took every thread. Past uploads.max_in_progress_per_user they are
    refused at once, store nothing, and leave the user's slots free; another user is not refused."""
    wm = make_wm({"uploads": {**LIMITS, "quota_mb": 100, "processing_threads": 1, "max_in_progress_per_user": 1}})
    served = serve(wm)
    greedy, patient = (served.client.register(name)["access_token"] for name in ("greedy", "patient"))
    photo = slow_photo()
    with ThreadPoolExecutor(7) as pool:
        def together():
            theirs = pool.submit(upload, served, patient, photo)
            answers = list(pool.map(lambda _: upload(served, greedy, photo), range(6)))
            assert theirs.result().status == 201, theirs.result().text
            return answers
        stored_ok = sent_until_refused(together, 429, "too_many_uploads")
    listed = served.client.get("/api/v1/uploads?limit=100", token=greedy).json
    assert len(listed["items"]) == stored_ok  # a refused upload stored nothing
    # The slots come back, after a refusal and after a failed upload alike.
    assert_error(upload(served, greedy, b"not an image at all"), 415, "unsupported_image")
    assert upload(served, greedy, encoded(Image.new("RGB", (40, 40), "red"), "JPEG")).status == 201


def test_many_users_uploads_past_the_processing_slots_and_the_waiting_room_are_503s_at_once(make_wm, serve):
    """Two uploads each from many users held every server thread just the same (a bystander's GET
    waited 5.4 s): past processing_threads + max_waiting in progress, all users together, an
    upload is a 503 server_busy at once, storing nothing, not a thread held for up to 10 s."""
    wm = make_wm({"uploads": {**LIMITS, "processing_threads": 1, "max_waiting": 1}})
    served = serve(wm)
    tokens = [served.client.register(f"crowd{n}")["access_token"] for n in range(6)]
    photo = slow_photo()
    with ThreadPoolExecutor(6) as pool:
        stored_ok = sent_until_refused(lambda: list(pool.map(lambda token: upload(served, token, photo), tokens)),
                                       503, "server_busy")
    listed = sum(len(served.client.get("/api/v1/uploads?limit=100", token=token).json["items"]) for token in tokens)
    assert listed == stored_ok  # a refused upload stored nothing
    assert upload(served, tokens[0], encoded(Image.new("RGB", (40, 40), "red"), "JPEG")).status == 201  # room again
