"""Text from scanned PDF pages, with the PP-OCR models packaged in rapidocr-onnxruntime (CPU, ~0.6 s
per page here). Pages that already have a text layer never come here."""

from __future__ import annotations

import functools
import io
import logging

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5
MAX_IMAGE_PIXELS = 40_000_000  # a page scanned at 600 dpi is ~35 MP; bigger is a bomb, not a page
MAX_IMAGES_PER_PAGE = 4
SMALL_TEXT_PX = 30  # line boxes lower than this are re-read enlarged
READ_AT_PX = 40


@functools.lru_cache(maxsize=1)
def _engine():
    """One engine per process (0.2 s to load); None when the OCR package is not installed."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        logger.warning("OCR is not available (%s): scanned pages stay unsearchable", exc)
        return None
    return RapidOCR()


def available() -> bool:
    return _engine() is not None


def image_text(data: bytes) -> str:
    """The text of one image, lines top to bottom; '' when nothing is legible or the image is unusable."""
    engine = _engine()
    if engine is None:
        return ""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                logger.warning("image of %dx%d skipped: too large for OCR", image.width, image.height)
                return ""
            image = image.convert("RGB")
            result = _recognise(engine, image)
            height = _median_line_height(result)
            if height and height < SMALL_TEXT_PX:
                # Small print loses its spaces ("renewsonMarch3"): read it again at a size the model knows.
                scale = min(2.0, READ_AT_PX / height)
                if image.width * image.height * scale * scale <= MAX_IMAGE_PIXELS:
                    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
                    result = _recognise(engine, image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        logger.warning("image could not be decoded for OCR: %s", exc)
        return ""
    lines = [(box, text) for box, text, score in (result or []) if float(score) >= MIN_CONFIDENCE and text.strip()]
    lines.sort(key=lambda line: (round(min(p[1] for p in line[0]) / 10), min(p[0] for p in line[0])))
    return "\n".join(text.strip() for _, text in lines)


def _recognise(engine, image) -> list:
    import numpy as np

    result, _ = engine(np.asarray(image)[:, :, ::-1])  # the engine wants BGR, like OpenCV
    return result or []


def _median_line_height(result) -> float:
    heights = sorted(max(p[1] for p in box) - min(p[1] for p in box) for box, _, _ in result)
    return heights[len(heights) // 2] if heights else 0.0


def page_text(page) -> str:
    """OCR of the images on a pypdf page (a scan is usually one image covering the page)."""
    texts = []
    try:
        images = list(page.images)[:MAX_IMAGES_PER_PAGE]
    except Exception as exc:  # pypdf raises a variety of errors on odd image streams
        logger.warning("page images could not be read: %s", exc)
        return ""
    for image in images:
        text = image_text(image.data)
        if text:
            texts.append(text)
    return "\n\n".join(texts)
