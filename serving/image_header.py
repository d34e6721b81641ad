"""Image dimensions read from file headers, without decoding: how many pixels a decoder would allocate.

A few kilobytes of PNG or JPEG can declare an image of gigabytes; the server reads the declared size of each
`*_bytes` input before the model's decoder does, and refuses images over its limit. Formats are told by the
signatures `tf.io.decode_image` looks for: PNG (IHDR), JPEG (the first SOFn frame header, found by skipping
markers as libjpeg does), GIF (logical screen and every frame), BMP (the DIB header) and WebP (VP8, VP8L, VP8X and
its animation frames). Animations count every frame, since a decoder may hold them all at once.
"""

import collections
import re
import struct

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF0-SOF15 less DHT (C4), JPG (C8) and DAC (CC), which share the range but are no frame headers.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RSTn, SOI.
_JPEG_STANDALONE_MARKERS = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff]")


class ImageSize(collections.namedtuple("ImageSize", ["format", "width", "height", "frames"])):
    """The size an image file declares.

    Args:
        format: "PNG", "JPEG", "GIF", "BMP" or "WebP".
        width: in pixels (for animations, the largest of the canvas and any frame).
        height: in pixels (likewise).
        frames: 1, or the number of frames of an animation.
    """

    @property
    def pixels(self):
        return self.width * self.height * self.frames

    def __str__(self):
        frames = f", {self.frames} frames" if self.frames > 1 else ""
        return f"{self.format} image of {self.width} x {self.height} pixels{frames}"


def read_image_size(data):
    """Returns the `ImageSize` that `data` declares, or None when it is no image of a known format or its header
    is cut short (a decoder refuses those anyway)."""
    for signature, reader in _READERS:
        if data.startswith(signature):
            try:
                return reader(data)
            except (struct.error, IndexError):  # header cut short
                return None
    return None


def _png(data):
    # The first chunk is IHDR: length, type, width, height (big-endian).
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return ImageSize("PNG", width, height, 1)


def _jpeg(data):
    position = 2  # past SOI
    while True:
        # As libjpeg finds its next marker: bytes before an 0xFF are skipped, so are fill bytes (0xFF), and FF 00 is
        # stuffed data, not a marker.
        if data[position] == 0xFF and data[position + 1] not in (0x00, 0xFF):  # the usual case: a marker right here
            marker, position = data[position + 1], position + 2
        else:
            found = _JPEG_MARKER.search(data, position)
            if found is None:
                return None
            marker, position = data[found.end() - 1], found.end()
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header: not a decodable image
            return None
        (length,) = struct.unpack_from(">H", data, position)
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack_from(">HH", data, position + 3)  # past length and sample precision
            return ImageSize("JPEG", width, height, 1)
        if length < 2:
            return None
        position += length


def _gif(data):
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # past the global colour table
    frames = 0
    while position < len(data):
        block = data[position]
        if block == 0x3B:  # trailer
            break
        if block == 0x2C:  # image descriptor: left, top, width, height, flags
            if position + 10 > len(data):  # cut short: the frames so far still count
                break
            _, _, frame_width, frame_height, frame_flags = struct.unpack_from("<HHHHB", data, position + 1)
            frames += 1
            width, height = max(width, frame_width), max(height, frame_height)
            position += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
            position += 1  # LZW minimum code size
        elif block == 0x21:  # extension: label, then data sub-blocks
            position += 2
        else:
            break
        position = _skip_sub_blocks(data, position)
    return ImageSize("GIF", width, height, max(frames, 1))


def _skip_sub_blocks(data, position):
    # Each sub-block is a length byte and that many bytes; a zero length ends the sequence.
    size = len(data)
    while position < size:
        length = data[position]
        position += 1 + length
        if not length:
            break
    return position


def _bmp(data):
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        width, height = struct.unpack_from("<HH", data, 18)
    else:  # BITMAPINFOHEADER and later: signed 32-bit, a negative height means top-down rows
        width, height = struct.unpack_from("<ii", data, 18)
    return ImageSize("BMP", abs(width), abs(height), 1)


def _webp(data):
    if data[8:12] != b"WEBP":
        return None
    kind = data[12:16]
    if kind == b"VP8 ":  # lossy: frame tag (3 bytes), start code (3 bytes), 14-bit width and height
        width, height = struct.unpack_from("<HH", data, 26)
        return ImageSize("WebP", width & 0x3FFF, height & 0x3FFF, 1)
    if kind == b"VP8L":  # lossless: signature byte, then 14-bit width - 1 and height - 1
        (bits,) = struct.unpack_from("<I", data, 21)
        return ImageSize("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1)
    if kind == b"VP8X":  # extended: flags, reserved, 24-bit canvas width - 1 and height - 1
        size = data[24:30]
        if len(size) < 6:
            return None
        width = int.from_bytes(size[:3], "little") + 1
        height = int.from_bytes(size[3:], "little") + 1
        return ImageSize("WebP", width, height, max(_count_webp_frames(data), 1))
    return None


def _count_webp_frames(data):
    frames, position = 0, 12
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        (length,) = struct.unpack_from("<I", data, position + 4)
        frames += kind == b"ANMF"
        position += 8 + length + (length & 1)  # chunks are padded to an even length
    return frames


_READERS = (
    (_PNG_SIGNATURE, _png),
    (b"\xff\xd8\xff", _jpeg),
    (b"GIF8", _gif),
    (b"BM", _bmp),
    (b"RIFF", _webp),
)
