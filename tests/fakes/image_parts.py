"""Images as the platforms receive them, for the fakes: OpenAI-style ``image_url`` parts with a
``data:`` URL (the rules of Ollama's OpenAI layer, the strictest of the servers: base64 only),
and the multipart body of Coze's and Dify's ``/files/upload`` (shared/reference/platforms.md).

Each fake keeps the decoded bytes of every image it accepted, so a test checks what reached the
upstream (downscaled, without EXIF) with Pillow, not what Wellmate meant to send.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import re

# Ollama's decodeImageURL: these prefixes and no other (an http URL, raw base64 and a GIF are refused).
DATA_URL = re.compile(r"data:(?:image/(?:jpeg|jpg|png|webp))?;base64,")
INVALID = "invalid image input"


def image_kind(data: bytes) -> str | None:
    """jpeg, png, webp or gif, judged by the bytes' signature."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def data_url_bytes(url) -> bytes:
    """The image a ``data:`` URL holds, or ValueError with Ollama's words."""
    if not isinstance(url, str):
        raise ValueError(INVALID)
    if url.startswith(("http://", "https://")):
        raise ValueError("image URLs are not currently supported, please use base64 encoded data instead")
    prefix = DATA_URL.match(url)
    if not prefix:
        raise ValueError(INVALID)
    try:
        data = base64.b64decode(url[prefix.end():], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(INVALID) from None
    if image_kind(data) is None:
        raise ValueError(INVALID)
    return data


def content_parts(content) -> tuple[str, list[bytes]]:
    """The text and the images of a message's ``content``: a string, or a list of ``text`` and
    ``image_url`` parts (``image_url`` an object with ``url``, or the URL itself, as Ollama takes
    it). ValueError for a part no server takes."""
    if isinstance(content, str) or content is None:
        return content or "", []
    if not isinstance(content, list):
        raise ValueError("content must be a string or an array of parts")
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            given = part.get("image_url")
            images.append(data_url_bytes(given.get("url") if isinstance(given, dict) else given))
        else:
            raise ValueError(f"invalid content part: {str(part)[:100]}")
    return "\n".join(texts), images


def multipart(content_type: str | None, body: bytes) -> tuple[dict, list[dict]]:
    """A ``multipart/form-data`` body: (text fields by name, files: each ``{name, filename,
    content_type, data}``; content_type None when the part declared none). ValueError when it is
    not a form."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise ValueError("not multipart/form-data")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ValueError("no parts")
    fields, files = {}, []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if filename is None:
            fields[name] = data.decode("utf-8")
        else:
            files.append({"name": name, "filename": filename, "data": data,
                          "content_type": part["Content-Type"] and part.get_content_type()})
    return fields, files
