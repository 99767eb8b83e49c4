"""A JPEG's pixels as it stores them: a luma plane and two subsampled chroma planes.

Kept this way, a decoded 4:2:0 source takes 1.5 bytes a pixel, a halving
touches a third of the bytes an RGB one does, and a tile cut from it is
encoded back to JPEG without upsampling or colour conversion, turned upright
as planes when the file's EXIF orientation says so (a phone's portraits).
Other outputs (PNG, rotations, mirroring...) are cut as RGB images (`cut_image`).

Coordinates are luma pixels. A chroma sample with sampling factors (sx, sy)
covers sx by sy luma pixels, so luma box (x0, y0, x1, y1) is chroma box
(x0 / sx, y0 / sy, x1 / sx, y1 / sy). Planes may be larger than `size` (the
library pads luma to whole chroma samples); pixels past `size` are padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from iiif_server.imaging import orientation, turbojpeg

FloatBox = tuple[float, float, float, float]
_JPEG_SAMPLING = (2, 2)  # of colour outputs: 4:2:0


@dataclass(frozen=True)
class Planes:
    planes: tuple[Image.Image, ...]  # mode L: Y, or Y, Cb, Cr
    size: tuple[int, int]
    sampling: tuple[int, int]  # of the chroma planes; (1, 1) with a single plane
    # The chroma planes halved, once made: a zoom session's next level and the 4:2:0
    # tiles of this one need the same box averages (`halved_chroma`).
    _halved: list[tuple[Image.Image, ...]] = field(default_factory=list, compare=False, repr=False)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def nbytes(self) -> int:
        total = sum(plane.width * plane.height for plane in self.planes)
        if self.sampling == (1, 1):  # room for the halved chroma, made or not
            total += sum(-(-p.width // 2) * -(-p.height // 2) for p in self.planes[1:])
        return total

    @property
    def is_gray(self) -> bool:
        return len(self.planes) == 1

    def chroma_size(self, size: tuple[int, int]) -> tuple[int, int]:
        sx, sy = self.sampling
        return -(-size[0] // sx), -(-size[1] // sy)

    def reduce(self, factor: int) -> Planes:
        """Each plane `factor` times smaller by box averaging, as Pillow's RGB `reduce`.

        Chroma is reduced only as far as the luma's size: a reduced level keeps
        all the colour detail the source has (a halved 4:2:0 source has a
        chroma sample for every pixel), and full-size chroma is shared as is.
        """
        size = (-(-self.width // factor), -(-self.height // factor))
        sx, sy = self.sampling
        chroma_factor = (max(1, factor // sx), max(1, factor // sy))
        if self.sampling == (1, 1) and factor == 2 and not self.is_gray:
            chroma = self.halved_chroma()
        else:
            chroma = tuple(
                plane if chroma_factor == (1, 1) else plane.reduce(chroma_factor)
                for plane in self.planes[1:]
            )
        sampling = (max(1, sx // factor), max(1, sy // factor))
        return Planes((self.planes[0].reduce(factor), *chroma), size, sampling)

    def halved_chroma(self) -> tuple[Image.Image, ...]:
        """The chroma planes halved both ways (box averages), made the first time."""
        if not self._halved:
            self._halved.append(tuple(plane.reduce(2) for plane in self.planes[1:]))
        return self._halved[0]

    def cut(self, box: FloatBox, size: tuple[int, int]) -> Planes:
        """`box` of these planes at exactly `size`: a crop where pixels line up, else Lanczos."""
        luma = cut_pixels(self.planes[0], box, size)
        if self.is_gray:
            return Planes((luma,), size, self.sampling)
        halved = self._halved_crop(box, size)
        if halved is not None:
            return Planes((luma, *halved), size, _JPEG_SAMPLING)
        sx, sy = self.sampling
        chroma_size = self.chroma_size(size)
        # The last chroma sample may cover luma padding past the box: stretch the
        # box to match, within the plane.
        x0, y0, x1, y1 = box
        right = x0 + (x1 - x0) * chroma_size[0] * sx / size[0]
        bottom = y0 + (y1 - y0) * chroma_size[1] * sy / size[1]
        cb, cr = self.planes[1:]
        chroma_box = (x0 / sx, y0 / sy, min(right / sx, cb.width), min(bottom / sy, cb.height))
        return Planes(
            (
                luma,
                cut_pixels(cb, chroma_box, chroma_size),
                cut_pixels(cr, chroma_box, chroma_size),
            ),
            size,
            self.sampling,
        )

    def turned(self, exif_orientation: int) -> Planes | None:
        """These planes turned upright as EXIF `exif_orientation` says (each plane turned
        alone, chroma sampling swapped with the axes); None when a side is not a whole
        number of chroma samples, whose grid would then not line up after the turn."""
        sx, sy = self.sampling
        if self.width % sx or self.height % sy:
            return None
        planes = tuple(orientation.apply(plane, exif_orientation) for plane in self.planes)
        if orientation.swaps_axes(exif_orientation):
            return Planes(planes, (self.height, self.width), (sy, sx))
        return Planes(planes, self.size, self.sampling)

    def _halved_crop(self, box: FloatBox, size: tuple[int, int]) -> tuple[Image.Image, ...] | None:
        """4:2:0 chroma of a crop of full-resolution chroma, from the halved planes if made.

        The box averages of a crop starting on even pixels are those of the whole
        plane: a session's tiles share the averages its next level was made of.
        """
        if self.sampling != (1, 1) or not self._halved:
            return None
        x0, y0, x1, y1 = (round(value) for value in box)
        if (x0, y0, x1, y1) != box or (x1 - x0, y1 - y0) != size or x0 % 2 or y0 % 2:
            return None
        chroma = self.planes[1]
        if (x1 % 2 and x1 != chroma.width) or (y1 % 2 and y1 != chroma.height):
            return None  # an odd edge inside the plane: averaged unlike the whole plane's
        chroma_box = (x0 // 2, y0 // 2, -(-x1 // 2), -(-y1 // 2))
        return tuple(plane.crop(chroma_box) for plane in self._halved[0])

    def cut_image(self, box: FloatBox, size: tuple[int, int], gray: bool = False) -> Image.Image:
        """`box` at `size` as an RGB image (L if gray), chroma resampled straight to `size`.

        Chroma at the output's full resolution keeps the detail a reduced
        output would lose if it were subsampled first; a gray image is the
        luma alone, which is ITU-R 601 luma as Pillow's RGB to L conversion.
        """
        luma = cut_pixels(self.planes[0], box, size)
        if gray or self.is_gray:
            return luma
        sx, sy = self.sampling
        chroma_box = (box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy)
        # Upsampling is bilinear, the triangle filter of libjpeg's fancy upsampling.
        upsampling = (
            chroma_box[2] - chroma_box[0] <= size[0] and chroma_box[3] - chroma_box[1] <= size[1]
        )
        resample = Image.Resampling.BILINEAR if upsampling else Image.Resampling.LANCZOS
        cb, cr = (plane.resize(size, resample, box=chroma_box) for plane in self.planes[1:])
        return Image.merge("YCbCr", (luma, cb, cr)).convert("RGB")

    def encode_jpeg(
        self, quality: int, gray: bool = False, optimize: bool = False, progressive: bool = False
    ) -> bytes:
        """A JPEG of the luma alone, or 4:2:0 as Pillow's encoder makes by default."""
        if gray or self.is_gray:
            planes, sampling = self.planes[:1], (1, 1)
        else:
            sx, sy = self.sampling
            to_420 = (_JPEG_SAMPLING[0] // sx, _JPEG_SAMPLING[1] // sy)
            chroma = [
                plane if to_420 == (1, 1) else plane.reduce(to_420) for plane in self.planes[1:]
            ]
            planes, sampling = (self.planes[0], *chroma), _JPEG_SAMPLING
        sizes = turbojpeg.plane_sizes(*self.size, sampling, len(planes))
        data = [
            _padded(plane, plane_size).tobytes()
            for plane, plane_size in zip(planes, sizes, strict=True)
        ]
        return turbojpeg.encode_planes(data, self.size, sampling, quality, optimize, progressive)


def from_buffers(
    buffers: list[bytearray], size: tuple[int, int], sampling: tuple[int, int]
) -> Planes:
    """Planes over buffers laid out as `turbojpeg.plane_sizes` says, without copying."""
    sizes = turbojpeg.plane_sizes(*size, sampling, len(buffers))
    planes = tuple(
        Image.frombuffer("L", plane_size, buffer, "raw", "L", 0, 1)
        for buffer, plane_size in zip(buffers, sizes, strict=True)
    )
    return Planes(planes, size, sampling)


def cut_pixels(image: Image.Image, box: FloatBox, size: tuple[int, int]) -> Image.Image:
    """`box` of `image` at `size`: a plain crop when the box is whole pixels of that size."""
    left, top, right, bottom = (round(value) for value in box)
    if (left, top, right, bottom) == box and (right - left, bottom - top) == size:
        return image.crop((left, top, right, bottom))
    return image.resize(size, Image.Resampling.LANCZOS, box=box)


def _padded(plane: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`plane` at `size`: cropped, or grown by repeating its last column and row as encoders pad."""
    if plane.size == size:
        return plane
    kept = plane.crop((0, 0, min(plane.width, size[0]), min(plane.height, size[1])))
    padded = Image.new("L", size)
    padded.paste(kept, (0, 0))
    if kept.width < size[0]:
        column = kept.crop((kept.width - 1, 0, kept.width, kept.height))
        padded.paste(column.resize((size[0] - kept.width, kept.height)), (kept.width, 0))
    if kept.height < size[1]:
        row = padded.crop((0, kept.height - 1, size[0], kept.height))
        padded.paste(row.resize((size[0], size[1] - kept.height)), (0, kept.height))
    return padded
