"""Images returned by ``sample``: they show themselves in Jupyter (``_repr_png_``) and save to disk."""

import base64
import struct


class Image:
    """One generated image: ``id`` (for ``rl_step`` rewards), ``prompt``, ``seed``, ``width``, ``height``,
    and the PNG bytes (decoded from base64, or read from ``path`` when the daemon wrote a file)."""

    def __init__(self, record):
        self.record = dict(record)
        self.id = record.get("id")
        self.prompt = record.get("prompt")
        self.seed = record.get("seed")
        self.width = record.get("width")
        self.height = record.get("height")
        self.path = record.get("path")
        self._png = base64.b64decode(record["png"]) if record.get("png") is not None else None

    @property
    def png(self):
        """The PNG file's bytes."""
        if self._png is None and self.path:
            with open(self.path, "rb") as f:
                self._png = f.read()
        return self._png

    def _repr_png_(self):
        return self.png

    def save(self, path):
        """Writes the PNG to ``path`` and returns ``path``."""
        with open(path, "wb") as f:
            f.write(self.png)
        return path

    @staticmethod
    def png_size(data):
        """(width, height) read from a PNG header, or None if ``data`` is not a PNG."""
        if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            return None
        return struct.unpack(">II", data[16:24])

    def __repr__(self):
        return f"Image(id={self.id!r}, prompt={self.prompt!r}, seed={self.seed!r}, {self.width}x{self.height})"


class Images(list):
    """A list of images that shows them side by side in Jupyter (HTML) and one per line elsewhere."""

    def _repr_html_(self):
        cells = []
        for im in self:
            b64 = base64.b64encode(im.png or b"").decode("ascii")
            cells.append(f'<figure style="display:inline-block;margin:4px;text-align:center">'
                         f'<img src="data:image/png;base64,{b64}" width="{4 * (im.width or 32)}" '
                         f'style="image-rendering:pixelated"/><figcaption style="font-size:small">'
                         f'{_escape(im.prompt or "")}<br/>seed {im.seed}</figcaption></figure>')
        return "<div>" + "".join(cells) + "</div>"


def _escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
