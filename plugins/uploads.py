"""Photos a user sends (a lab report, a rash, a pill box), as the mini-program uploads them.

    POST   /api/v1/uploads        multipart/form-data as wx.uploadFile sends it (the file part `file`)
    GET    /api/v1/uploads        the caller's uploads, newest first (paged)
    GET    /api/v1/uploads/{id}   the stored image (?size=thumb: the small one); owner only
    DELETE /api/v1/uploads/{id}   remove it and its files

What is kept is not what was sent: the image is judged by its own bytes (JPEG, PNG, WebP, GIF's
first frame; anything else is a 415), turned upright by its EXIF orientation, downscaled to
``uploads.max_side`` and re-encoded without any of its metadata (EXIF with the GPS position and
the camera's serial, XMP, comments; the ICC colour profile stays, see `encode`). A 12 MP phone
photo of 3-5 MB becomes a JPEG of a few hundred KB that a vision model reads as well.

Metadata is the collection ``uploads``; the bytes are files, data/uploads/<user_id>/<id>.jpg|png
and <id>.thumb.jpg|png. The metadata document is the commit point: files are written (atomically)
before it and removed after it, so a kill in between leaves files nobody can reach, which
`startup` sweeps, never a document without its files. Other plugins (image chat) use the service
``uploads`` (`Uploads`).
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import re
import shutil
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import bottle

from wellmate import (ApiError, Index, Setting, StorageUnavailable, atomic_write, fsync_dir, hookimpl, new_id,
                      now_iso, paged)
from wellmate_plugins._locks import Admission, KeyedLocks
from wellmate_plugins._openapi import Api, download, integer, obj, page, paging, string
from wellmate_plugins._openapi import upload as multipart

log = logging.getLogger("wellmate.uploads")

COLLECTION = "uploads"
PROCESSING_WAIT = 10  # seconds an upload waits for a processing slot before a 503
SIZES = ("full", "thumb")
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")  # what Pillow may recognise in an upload, by its bytes
PUBLIC = ("id", "content_type", "size", "width", "height", "created_at")
# Room in a body for the multipart framing and wx.uploadFile's formData text parts, besides the file.
FORM_ROOM = 64 * 1024
MAX_PARTS = 50
READ_CHUNK = 64 * 1024
MB = 1024 * 1024
MAX_ICC = 64 * 1024  # sRGB's ICC profile is ~3 KB, Display P3's 0.5 KB: a bigger one carries something else
# EXIF Orientation -> the turn that shows the image upright (as ImageOps.exif_transpose does).
ORIENTATIONS = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
                7: "TRANSVERSE", 8: "ROTATE_90"}


@hookimpl
def config_schema():
    return {"uploads": {
        "max_file_mb": Setting(10.0, "Largest photo accepted, in MiB as uploaded (bigger: 413). At most 60: "
                                     "waitress refuses bodies over 64 MiB itself.", float, min=0.01, max=60),
        "quota_mb": Setting(200.0, "What one user's stored photos may take on disk, in MiB (the downscaled "
                                   "image and its thumbnail; over: 413).", float, min=0.01),
        "max_side": Setting(1600, "Longest side of a stored photo, in pixels: bigger ones are downscaled.",
                            int, min=64, max=10000),
        "thumb_side": Setting(320, "Longest side of a thumbnail (?size=thumb), in pixels.", int, min=16, max=2000),
        "jpeg_quality": Setting(85, "JPEG quality of stored photos (1-95).", int, min=1, max=95),
        "max_pixels": Setting(50_000_000, "Largest image accepted, in pixels (width x height; a 48 MP phone "
                                          "photo is 48,000,000). Bigger: 413, before it is decoded. Also "
                                          "Pillow's decompression-bomb limit.", int, min=10_000),
        "max_decode_mb": Setting(160, "Most memory one photo may take while it is decoded and converted, in MiB "
                                      "(estimated from its header: pixels x bytes a pixel takes on the way). A "
                                      "JPEG is decoded at reduced scale and costs little; a 7000 x 7000 PNG of "
                                      "100 KB would take ~470 MB. Bigger: 413, before it is decoded.",
                                 int, min=16, max=4096),
        "processing_threads": Setting(2, "How many photos are decoded and re-encoded at once; more wait, up to "
                                         "10 s, then 503 server_busy. Each takes up to max_decode_mb while it is.",
                                      int, min=1, max=32),
        "max_waiting": Setting(1, "Uploads that may wait for a processing slot, all users together (each "
                                  "holds a server thread while it waits); more get 503 server_busy at once. "
                                  "Uploads take their threads from chat.reserve_threads: keep processing_threads "
                                  "+ max_waiting below it, so other requests keep a thread.",
                               int, min=0, max=256),
        "max_in_progress_per_user": Setting(2, "Uploads one user may have in progress at once (each holds a server "
                                               "thread while it waits for a processing slot); more get 429 "
                                               "too_many_uploads.", int, min=1, max=64),
    }}


# -- the multipart body -------------------------------------------------------------------------------


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def header_params(value: str) -> dict:
    """The ``; key=value`` parameters of a header value (quotes and backslash escapes removed)."""
    params = {}
    for key, raw in PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key.lower()] = raw
    return params


def bad_form(message: str) -> ApiError:
    return ApiError(400, "invalid_multipart", message + " Send multipart/form-data with the photo in a part "
                                                        "named `file`, as wx.uploadFile does.")


def form_parts(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/form-data body (RFC 7578), in order."""
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise bad_form(f"Content-Type is {content_type or 'missing'!r}.")
    boundary = header_params(content_type).get("boundary", "")
    if not 1 <= len(boundary) <= 200:
        raise bad_form("Content-Type has no boundary.")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    start = 0 if body.startswith(delimiter) else body.find(b"\r\n" + delimiter)
    if start < 0:
        raise bad_form("The body has no part.")
    position = start + (0 if start == 0 else 2) + len(delimiter)
    parts = []
    while True:
        if body.startswith(b"--", position):
            return parts  # the closing delimiter
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise bad_form("A boundary line is broken.")
        headers_end = body.find(b"\r\n\r\n", line_end)
        if headers_end < 0:
            raise bad_form("A part's headers do not end.")
        headers = {}
        for line in body[line_end + 2:headers_end].decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        data_start = headers_end + 4
        data_end = body.find(b"\r\n" + delimiter, data_start)
        if data_end < 0:
            raise bad_form("The body ends before its closing boundary (a cut-off upload?).")
        disposition = headers.get("content-disposition", "")
        params = header_params(disposition)
        if not disposition.lower().startswith("form-data") or "name" not in params:
            raise bad_form("A part has no Content-Disposition: form-data; name=...")
        parts.append(Part(params["name"], params.get("filename"), headers.get("content-type", "text/plain"),
                          body[data_start:data_end]))
        if len(parts) > MAX_PARTS:
            raise bad_form(f"More than {MAX_PARTS} parts.")
        position = data_end + 2 + len(delimiter)


def read_body(limit: int) -> bytes:
    """The request's body, read a chunk at a time and never more than ``limit`` bytes of it: a
    Content-Length over the limit is refused before reading, a body without one is cut at it."""
    request = bottle.request
    too_big = ApiError(413, "file_too_large", f"The upload is over {limit - FORM_ROOM:,} bytes "
                                              f"(uploads.max_file_mb); send a smaller photo.")
    length = request.content_length  # -1 when the client sent none
    if length > limit:
        raise too_big
    stream, chunks, total = request.environ["wsgi.input"], [], 0
    while length < 0 or total < length:
        chunk = stream.read(min(READ_CHUNK, (length if length >= 0 else limit + 1) - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise too_big
    return b"".join(chunks)


# -- the image ----------------------------------------------------------------------------------------


@dataclass
class Processed:
    content_type: str
    full: bytes
    thumb: bytes
    width: int
    height: int
    thumb_width: int
    thumb_height: int
    source_format: str


def unsupported(message: str) -> ApiError:
    return ApiError(415, "unsupported_image", message + " Send a JPEG, PNG, WebP or GIF photo.")


def too_many_pixels(conf: dict, size: tuple | None = None) -> ApiError:
    what = f"is {size[0]} x {size[1]} pixels" if size else "has more pixels than that"
    return ApiError(413, "image_too_large", f"The image {what}; the limit is {conf['max_pixels']:,} pixels "
                                            f"(uploads.max_pixels). Send a smaller photo.")


def process(data: bytes, conf: dict) -> Processed:
    """Judge, orient, strip, downscale and re-encode one uploaded image (see the module)."""
    from PIL import Image, UnidentifiedImageError

    try:
        # formats=: only these decoders may claim the bytes; the name and declared type never count.
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # see Uploads.__init__
        raise too_many_pixels(conf)
    except UnidentifiedImageError:
        raise unsupported("This file is not an image this server takes (judged by its bytes, not its name).")
    except Exception as e:  # a broken header: Pillow raises SyntaxError, struct.error, ValueError, ...
        raise unsupported(f"This image cannot be read ({type(e).__name__}).")
    if image.width * image.height > conf["max_pixels"]:
        # Refused from the header alone: nothing was decoded, so a bomb costs nothing.
        raise too_many_pixels(conf, image.size)
    if decode_cost(image) > conf["max_decode_mb"] * MB:
        # A small file can be a big image: a blank 7000 x 7000 16-bit PNG is 95 KB and took 470 MB here.
        raise ApiError(413, "image_too_large", f"The image is {image.width} x {image.height} pixels ({image.mode}); "
                                                f"decoding it would take more memory than this server allows "
                                                f"(uploads.max_decode_mb). Send a smaller photo.")
    source_format, source_mode = image.format, image.mode
    icc = image.info.get("icc_profile")
    try:
        if source_format in ("JPEG", "MPO"):  # MPO: the multi-picture JPEG many phones write
            # Decode at 1/2, 1/4 or 1/8 scale straight away when that is still over max_side: a
            # 4000 x 3000 photo is decoded as 2000 x 1500 (a quarter of the memory and time).
            scale = conf["max_side"] / max(image.size)
            if scale < 1:
                image.draft(None, (max(1, int(image.width * scale)), max(1, int(image.height * scale))))
        orientation = exif_orientation(image)
        image = normalised(image)
    except Exception as e:  # truncated or corrupt data: OSError, ValueError, EOFError, zlib.error, ...
        raise unsupported(f"This image cannot be decoded ({type(e).__name__}: {e}).")
    image.thumbnail((conf["max_side"], conf["max_side"]), Image.Resampling.LANCZOS)
    # Turned once downscaled (the longest side is the same either way): a turn of the decoded
    # photo was a second copy of it (12 MB for a 12 MP JPEG decoded at half size).
    image = upright(image, orientation)
    kind = "PNG" if image.mode in ("RGBA", "LA") else "JPEG"
    # An ICC profile describes colours, not the user or the camera: kept so a wide-gamut (Display
    # P3) phone photo keeps its colours; dropped when the mode changed (CMYK, 16-bit), where it
    # no longer applies, or when it is too big to be only a colour profile.
    if source_mode not in ("RGB", "RGBA", "L", "LA", "P") or len(icc or b"") > MAX_ICC:
        icc = None
    thumb = image.copy()
    thumb.thumbnail((conf["thumb_side"], conf["thumb_side"]), Image.Resampling.LANCZOS)
    return Processed("image/png" if kind == "PNG" else "image/jpeg", encode(image, kind, conf, icc),
                     encode(thumb, kind, conf, icc), image.width, image.height, thumb.width, thumb.height,
                     source_format)


def decode_cost(image) -> int:
    """Bytes one opened image may take while `process` decodes and converts it, per pixel as
    measured here (peak RSS of `process` on 4000 x 4000 PNGs): Pillow keeps RGB in 4 bytes a
    pixel, so RGB took 6.3 B/px, RGBA and LA 10.3 (the alpha read out, a converted copy), 16-bit
    grey 10 (through 32-bit "I"), 8-bit grey 1.6. A JPEG is decoded at reduced scale (draft), to
    at most twice max_side a side: a 12 MP photo took 53 MB."""
    pixels = image.width * image.height
    if image.format in ("JPEG", "MPO"):
        return min(pixels, 4 * 2000 * 2000) * 5
    per_pixel = {"1": 6, "L": 2, "P": 11, "PA": 11, "LA": 11, "RGB": 7, "RGBA": 11, "CMYK": 9, "YCbCr": 9,
                 "I": 10, "F": 10}.get(image.mode, 11)  # I;16 and the other 16-bit modes: 11
    return pixels * per_pixel


def exif_orientation(image) -> int:
    """The EXIF orientation (1-8) of an opened image: how a phone stored a photo (portraits sideways)."""
    from PIL import ExifTags

    try:
        return image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception as e:  # an EXIF block Pillow cannot parse: the pixels may be fine, the turn is unknown
        log.info("upload: unreadable EXIF (%s); stored as it is", e)
        return 1


def upright(image, orientation: int):
    """The image turned as its EXIF orientation says."""
    from PIL import Image

    turn = ORIENTATIONS.get(orientation)
    return image.transpose(getattr(Image.Transpose, turn)) if turn else image


def normalised(image):
    """The first frame in a mode JPEG or PNG stores: RGB or L, or RGBA/LA when some pixel is
    transparent (a PNG with alpha stays a PNG: flattening would draw a background on it)."""
    image.load()
    if image.mode == "P" or (image.mode in ("RGB", "L") and "transparency" in image.info):
        image = image.convert("RGBA")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")  # 16-bit grey
    elif image.mode == "F":
        image = image.convert("L")
    elif image.mode not in ("RGB", "L", "RGBA", "LA"):
        image = image.convert("RGB")  # CMYK, YCbCr, 1-bit
    if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert(image.mode[:-1])  # an alpha channel nothing uses
    return image


def encode(image, kind: str, conf: dict, icc: bytes | None) -> bytes:
    image.info = {}  # nothing read from the upload is written back: EXIF, XMP, comments, PNG text
    out = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if kind == "JPEG":
        image.save(out, "JPEG", quality=conf["jpeg_quality"], **extra)
    else:
        image.save(out, "PNG", **extra)
    return out.getvalue()


# -- the service --------------------------------------------------------------------------------------


def make_folder(folder) -> None:
    """``folder``, made if missing with its entry in its parent made durable (so the files written
    into it survive a power cut)."""
    try:
        folder.mkdir()
    except FileExistsError:
        return
    fsync_dir(folder.parent)


def public(doc: dict) -> dict:
    return {key: doc[key] for key in PUBLIC}


class Uploads:
    """The ``uploads`` service: every method takes the owner's user id, and an upload of anyone
    else answers as one that does not exist."""

    def __init__(self, wm):
        from PIL import Image

        self.wm = wm
        self.conf = wm.config["uploads"]
        self.folder = wm.data_dir / "uploads"
        # Pillow's own bomb guard, set deliberately (process-wide): its default, 89 MP, only warned
        # up to 179 MP and decoded. From max_pixels, and its warning made an error, Image.open refuses
        # any image over it from the header (a 400 MP PNG of 50 KB: nothing decoded); `process`
        # checks the same number itself too, in case another Wellmate in this process set another.
        Image.MAX_IMAGE_PIXELS = self.conf["max_pixels"]
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        self._processing = threading.BoundedSemaphore(self.conf["processing_threads"])
        self._quota_locks = KeyedLocks()  # per user: the quota check and the write are one step
        # Uploads being stored, per user and in all (waiting for a processing slot included)
        self._in_progress = Admission(self.conf["max_in_progress_per_user"],
                                      self.conf["processing_threads"] + self.conf["max_waiting"])

    # -- reading
    def _doc(self, user_id: str, upload_id: str) -> dict | None:
        doc = self.wm.storage.get(COLLECTION, upload_id) if isinstance(upload_id, str) and upload_id else None
        return doc if doc is not None and doc["user_id"] == user_id else None

    def get(self, user_id: str, upload_id: str) -> dict | None:
        doc = self._doc(user_id, upload_id)
        return public(doc) if doc else None

    def content_type(self, user_id: str, upload_id: str) -> str | None:
        doc = self._doc(user_id, upload_id)
        return doc["content_type"] if doc else None

    def read(self, user_id: str, upload_id: str, size: str = "full") -> bytes | None:
        if size not in SIZES:
            raise ValueError(f"size: one of {', '.join(SIZES)}, not {size!r}")
        doc = self._doc(user_id, upload_id)
        if doc is None:
            return None
        try:
            return (self.folder / user_id / doc["files"][size]).read_bytes()
        except FileNotFoundError:
            log.error("upload %s of user %s has no %s file", upload_id, user_id, size)
            return None

    def data_url(self, user_id: str, upload_id: str, size: str = "full") -> str | None:
        data = self.read(user_id, upload_id, size)
        if data is None:
            return None
        return f"data:{self.content_type(user_id, upload_id)};base64,{base64.b64encode(data).decode('ascii')}"

    def list(self, user_id: str, limit: int = 20, before: str | None = None) -> tuple[list, str | None]:
        docs, cursor = self.wm.storage.find(COLLECTION, {"user_id": user_id}, order="-created_at", limit=limit,
                                            before=before)
        return [public(doc) for doc in docs], cursor

    def _each_doc(self, user_id: str):
        before = None
        while True:
            docs, before = self.wm.storage.find(COLLECTION, {"user_id": user_id}, order="-created_at", limit=100,
                                                before=before)
            yield from docs
            if before is None:
                return

    def usage(self, user_id: str) -> int:
        """Bytes the user's uploads take on disk. Summed from the documents (a page of 100 per
        read), not a counter a kill could leave wrong: 200 MiB of 1600 px photos is ~1,000 of them."""
        return sum(doc["size"] + doc["thumb_size"] for doc in self._each_doc(user_id))

    # -- writing
    @contextmanager
    def _slot(self, user_id: str):
        """A place among the uploads in progress, or an answer at once: 429 past the user's
        ``max_in_progress_per_user``, 503 past ``processing_threads + max_waiting`` for everyone.
        Each upload holds a server thread while it waits for a processing slot (up to 10 s): one
        user's 16 sent together held all 16 threads, and so did 16 users' 2 each (a bystander's GET
        waited 5.4 s); every other request queued behind them."""
        refused = self._in_progress.enter(user_id)
        if refused == "key":
            raise ApiError(429, "too_many_uploads", f"You already have {self._in_progress.per_key} uploads in progress, "
                                                    f"the most this server takes at once from one user "
                                                    f"(uploads.max_in_progress_per_user); wait for one to end.",
                           headers={"Retry-After": "2"})
        if refused == "total":
            raise self._busy()
        try:
            yield
        finally:
            self._in_progress.leave(user_id)

    @staticmethod
    def _busy() -> ApiError:
        return ApiError(503, "server_busy", "The server is busy with other photos; try again in a few seconds.",
                        headers={"Retry-After": "5"})

    def store(self, user_id: str, data: bytes) -> dict:
        """Check, orient, strip, downscale and keep ``data`` as the user's; the get() dict. Raises
        ApiError 413 (too big, too many pixels, over quota), 415 (not an image taken), 429 (the
        user has ``max_in_progress_per_user`` uploads in progress already) or 503 (the server has
        as many as it takes, or no processing slot came free in time)."""
        with self._slot(user_id):
            return self._store(user_id, data)

    def _store(self, user_id: str, data: bytes) -> dict:
        conf = self.conf
        quota = int(conf["quota_mb"] * MB)
        if len(data) > conf["max_file_mb"] * MB:
            raise ApiError(413, "file_too_large", f"The photo is {len(data):,} bytes; the limit is "
                                                  f"{int(conf['max_file_mb'] * MB):,} (uploads.max_file_mb).")
        if self.usage(user_id) >= quota:
            raise self._over_quota(quota)
        # Decoding is CPU and memory: a few at once; the rest wait, but not forever, since each
        # waiting upload holds one of the server's threads (32 waiting stalled a health check 19 s).
        if not self._processing.acquire(timeout=PROCESSING_WAIT):
            raise self._busy()
        try:
            image = process(data, conf)
        finally:
            self._processing.release()
        with self._quota_locks.hold(user_id):
            if self.usage(user_id) + len(image.full) + len(image.thumb) > quota:
                raise self._over_quota(quota)
            return public(self._write(user_id, image))

    def _over_quota(self, quota: int) -> ApiError:
        return ApiError(413, "quota_exceeded", f"Your photos take the {quota:,} bytes this server keeps per "
                                               f"user (uploads.quota_mb); delete some to upload more.")

    def _write(self, user_id: str, image: Processed) -> dict:
        upload_id = new_id()
        extension = "png" if image.content_type == "image/png" else "jpg"
        files = {"full": f"{upload_id}.{extension}", "thumb": f"{upload_id}.thumb.{extension}"}
        folder = self.folder / user_id
        try:
            make_folder(self.folder)
            make_folder(folder)
            atomic_write(folder / files["full"], image.full)
            atomic_write(folder / files["thumb"], image.thumb)
        except OSError as e:
            self._remove_files(user_id, files.values())
            raise StorageUnavailable(f"cannot write an upload under {folder}: {e.strerror or e}") from e
        doc = {"id": upload_id, "user_id": user_id, "content_type": image.content_type, "size": len(image.full),
               "width": image.width, "height": image.height, "thumb_size": len(image.thumb),
               "thumb_width": image.thumb_width, "thumb_height": image.thumb_height,
               "source_format": image.source_format, "files": files, "created_at": now_iso()}
        try:
            return self.wm.storage.insert(COLLECTION, doc)
        except BaseException:
            self._remove_files(user_id, files.values())
            raise

    def _remove_files(self, user_id: str, names) -> None:
        for name in names:
            try:
                (self.folder / user_id / name).unlink()
            except FileNotFoundError:
                pass

    def delete(self, user_id: str, ids) -> int:
        """Delete those of ``ids`` that are the user's uploads (the document, then its files);
        how many were. Safe to repeat: a gone id is skipped."""
        deleted = 0
        for upload_id in ids:
            doc = self._doc(user_id, upload_id)
            if doc is not None and self.wm.storage.delete(COLLECTION, doc["id"]):
                deleted += 1
                self._remove_files(user_id, doc["files"].values())
        return deleted

    def delete_user(self, user_id: str) -> None:
        self.wm.storage.delete_where(COLLECTION, {"user_id": user_id})
        shutil.rmtree(self.folder / user_id, ignore_errors=True)

    def export(self, user_id: str):
        """The user's uploads with their stored image in base64, one at a time."""
        for doc in self._each_doc(user_id):
            data = self.read(user_id, doc["id"])
            if data is not None:
                yield {**public(doc), "url": f"/api/v1/uploads/{doc['id']}",
                       "data_base64": base64.b64encode(data).decode("ascii")}

    def sweep(self) -> int:
        """Remove what a killed process left: temp files, and files whose document was never
        written (killed mid-upload) or already deleted (killed mid-delete). How many went."""
        removed = 0
        if not self.folder.is_dir():
            return 0
        for folder in self.folder.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                upload_id = path.name.lstrip(".").split(".")[0]
                if path.name.endswith(".tmp") or self._doc(folder.name, upload_id) is None:
                    path.unlink(missing_ok=True)
                    removed += 1
        if removed:
            log.info("uploads: removed %d file(s) left by an interrupted upload or delete", removed)
        return removed


# -- hooks --------------------------------------------------------------------------------------------


@hookimpl
def register_collections(register):
    register(COLLECTION, indexes=[Index(("user_id",), "created_at")])


@hookimpl
def register_services(register):
    register("uploads", Uploads)


@hookimpl
def startup(wm):
    wm.service("uploads").sweep()


@hookimpl
def delete_user_data(user, wm):
    wm.service("uploads").delete_user(user["id"])


@hookimpl
def export_user_data(user, wm):
    # The export is one self-contained JSON document that people keep (often just before deleting
    # the account), so the images travel inside it, base64, one at a time as it streams; a link
    # would die with the account. ~270 KB of export per 200 KB photo.
    return {"uploads": wm.service("uploads").export(user["id"])}


# What a stored upload is served as (every upload is re-encoded to one of these two): named, not
# "image/*", so a client knows what it gets and a generator can map each onto bytes (a range it
# cannot: openapi-python-client dropped the response, tests/test_openapi_client.py).
IMAGE_FILE = [download("image/jpeg", attachment=False), download("image/png", attachment=False)]
UPLOAD = obj({"id": string(), "content_type": string(enum=["image/jpeg", "image/png"]), "size": integer(0),
              "width": integer(1), "height": integer(1), "created_at": string(format="date-time")},
             required=["id", "content_type", "size", "width", "height", "created_at"], title="Upload")


def uploaded(uploads: Uploads, user: dict) -> dict:
    """Store the photo of this request's multipart body (its part ``file``, as wx.uploadFile
    sends it) as ``user``'s: the get() dict. For every route that takes an upload."""
    body = read_body(int(uploads.conf["max_file_mb"] * MB) + FORM_ROOM)
    # Not bottle's request.content_type: it is lower-cased, and a boundary is case-sensitive.
    content_type = bottle.request.environ.get("CONTENT_TYPE", "")
    files = [part for part in form_parts(body, content_type) if part.name == "file"]
    if len(files) != 1:
        raise bad_form("No part named `file`." if not files else "More than one part named `file`.")
    del body
    stored = uploads.store(user["id"], files[0].data)
    log.info("user %s uploaded %s (%d bytes stored)", user["id"], stored["id"], stored["size"])
    return stored


@hookimpl
def routes(app, wm):
    uploads = wm.service("uploads")

    def not_found(upload_id: str) -> ApiError:
        return ApiError(404, "upload_not_found", f"You have no upload {upload_id!r}.")

    @app.post("/api/v1/uploads", api=Api(
        "Upload a photo (multipart, as wx.uploadFile sends it)",
        body=multipart({"file": string(format="binary", content_media_type="image/jpeg",
                                    description="JPEG, PNG, WebP or GIF, judged by its bytes")}, required=["file"],
                       example={"file": "(the photo's bytes, as wx.uploadFile sends them)"}),
        responses={201: UPLOAD},
        errors={415: "unsupported_image: not a JPEG, PNG, WebP or GIF", 413: "too big, too many pixels, or over the quota",
                429: "too_many_uploads: the user's uploads.max_in_progress_per_user are in progress",
                503: "server_busy: as many uploads are in progress as the server takes (Retry-After); "
                     "storage_unavailable: nothing was saved"}))
    def upload():
        stored = uploaded(uploads, wm.require_user())
        bottle.response.status = 201
        bottle.response.set_header("Location", f"/api/v1/uploads/{stored['id']}")
        return stored

    @app.get("/api/v1/uploads", api=Api("The user's uploads, newest first", query=paging(), responses={200: page(UPLOAD)}))
    def list_uploads():
        user = wm.require_user()
        return paged(functools.partial(uploads.list, user["id"]))

    @app.get("/api/v1/uploads/<upload_id>", api=Api(
        "An upload's image (its owner only)", query={"size": string(enum=list(SIZES), default="full")},
        responses={200: IMAGE_FILE}))
    def fetch(upload_id):
        user = wm.require_user()
        size = bottle.request.query.get("size") or "full"
        if size not in SIZES:
            raise ApiError(400, "invalid_field", f"size: one of {', '.join(SIZES)}")
        data = uploads.read(user["id"], upload_id, size)
        if data is None:
            raise not_found(upload_id)
        bottle.response.content_type = uploads.content_type(user["id"], upload_id)
        bottle.response.set_header("Cache-Control", "private, no-store")  # health data: no copies in caches
        bottle.response.set_header("X-Content-Type-Options", "nosniff")
        return data

    @app.delete("/api/v1/uploads/<upload_id>", api=Api("Delete an upload", responses={204: None}))
    def delete(upload_id):
        user = wm.require_user()
        if not uploads.delete(user["id"], [upload_id]):
            raise not_found(upload_id)
        bottle.response.status = 204
        return ""
